"""The `proxns` console script: one group; every command lives in a module of this package.

``train`` (offline training), ``serve`` (API + workers), ``worker`` (training workers), ``user``
(users and API tokens) and the HTTP client ``submit``/``jobs``/``show``/``download``/``weights``, and
organising (``cancel``, ``tag``, ``note``, ``archive``, ``unarchive``, ``delete``, ``experiments``). Importing the package never imports torch:
only ``proxns train`` loads the training code, when it runs.
"""

from __future__ import annotations

import click

from . import client, organise, serve, train, user, weights, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="proxns-lab")
def main() -> None:
    """ProxNS Lab: proximal network slimming, offline and as a service."""


for _command in (
    train.train,
    serve.serve,
    worker.worker,
    user.user,
    client.submit,
    client.jobs,
    client.show,
    client.download,
    weights.weights,
    *organise.COMMANDS,
):
    main.add_command(_command)
