"""The `proxns` console script: one group; each room contributes its own subcommands."""

from __future__ import annotations

import click

from proxns_core.cli import train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="proxns-lab")
def main() -> None:
    """ProxNS Lab: proximal network slimming, offline and as a service."""


main.add_command(train)

# The experiment service (api/, worker/): server, workers and the HTTP client.
from api.cli import download, jobs, serve, show, submit  # noqa: E402
from worker.cli import worker  # noqa: E402

for _command in (serve, worker, submit, jobs, show, download):
    main.add_command(_command)
