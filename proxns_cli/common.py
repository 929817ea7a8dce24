"""What every console command shares: failing with one line and exit code 2, reading a config file.

Torch-free: the client commands and ``proxns serve`` import this.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any, NoReturn

import click
import yaml


class CommandError(click.ClickException):
    """A failure the user can fix: printed as one ``error: ...`` line on stderr, exit code 2.

    click's own ``ClickException`` exits 1 and ``UsageError`` prints the usage first; every
    ``proxns`` command reports bad input, a missing file, an unreachable server or a busy port
    through this instead, like ``proxns train`` rejects a bad value.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


def fail(message: str) -> NoReturn:
    """Stop the command with ``error: <message>`` on stderr and exit code 2."""
    raise CommandError(message)


def one_line(text: str) -> str:
    """``text`` with its lines joined by ``; `` (error messages of other libraries span lines)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return "; ".join(lines)


def _yaml_reason(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def read_mapping(path: str, label: str | None = None, empty_ok: bool = True) -> dict:
    """The mapping in YAML/JSON file ``path`` (``-``: stdin); any problem with it fails the command.

    ``label`` prefixes the messages (default the path itself). A ``.json`` file is read as JSON,
    anything else as YAML (a superset of JSON). An empty file is an empty mapping if ``empty_ok``.
    """
    label = label or path
    if path == "-":
        text = sys.stdin.read()
    else:
        file = Path(path)
        if not file.exists():
            fail(f"{label}: no such file")
        if file.is_dir():
            fail(f"{label}: is a folder, expected a YAML or JSON file")
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            fail(f"{label}: not a text file, expected YAML or JSON")
        except OSError as err:
            fail(f"{label}: cannot read it ({err.strerror or err})")
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        fail(f"{label}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})")
    except yaml.YAMLError as err:
        fail(f"{label}: not valid YAML/JSON ({_yaml_reason(err)})")
    if data is None and empty_ok:
        return {}
    if data is None:
        fail(f"{label}: is empty, expected a mapping of config fields")
    if not isinstance(data, dict):
        fail(f"{label}: expected a mapping of config fields, got a {type(data).__name__}")
    return data
