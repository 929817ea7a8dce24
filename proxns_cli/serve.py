"""``proxns serve``: the API and the training workers on one machine. Torch-free (workers are children)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys

import click

from .common import fail, one_line
from .supervise import Supervisor


def check_port_free(host: str, port: int) -> None:
    """Fail unless ``host:port`` can be bound, the way uvicorn will bind it (SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except socket.gaierror as err:
        fail(f"--host {host}: not an address of this machine ({err.strerror})")
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use; stop what runs there or pick another --port")
        fail(f"cannot listen on {host}:{port} ({err.strerror or err})")


def prepare_database(database_url: str) -> str:
    """Connect to the database and bring its schema up to date; fail with one line if it cannot.

    Returns the URL with its password hidden.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from store.migrate import upgrade

    try:
        shown = make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        fail(f"PROXNS_DATABASE_URL {database_url!r} is not a database URL (e.g. sqlite:///var/proxns.db)")
    try:
        upgrade(database_url)
    except SQLAlchemyError as err:
        reason = getattr(err, "orig", None) or err
        fail(f"database {shown}: cannot connect or migrate ({one_line(str(reason))})")
    except OSError as err:  # SQLite: the folder of the file cannot be made
        fail(f"database {shown}: cannot create it ({err.strerror or err}: {err.filename or ''})")
    except ImportError as err:
        fail(f"database {shown}: its driver is not installed ({err})")
    return shown


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the API listens on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="Training worker processes started beside the API (0: run the API only).",
)
@click.option(
    "--api-workers", default=1, show_default=True, type=click.IntRange(min=1), help="API server processes."
)
def serve(host: str, port: int, workers: int, api_workers: int) -> None:
    """Migrate the database, start the API and the training workers; Ctrl-C or SIGTERM stops them all.

    SQLite and a filesystem queue under ./var/ unless PROXNS_DATABASE_URL / PROXNS_BROKER_URL say otherwise.
    A busy port or an unreachable database fails before anything starts.
    """
    import uvicorn

    from store.settings import Settings

    settings = Settings()
    check_port_free(host, port)
    shown_db = prepare_database(settings.database_url)
    click.echo(f"database {shown_db} is up to date")

    sup = Supervisor()
    # uvicorn installs its own handlers while it runs, then restores these and re-raises the signal
    # it caught; before and after it, a signal just asks the supervisor to stop.
    with sup.handle_signals():
        try:
            if workers:
                sup.start(
                    [sys.executable, "-m", "proxns_cli", "worker", "--processes", str(workers)],
                    name="training worker",
                )
                # A worker that dies on its own takes the service down, rather than leaving jobs queued.
                sup.watch(on_death=lambda _name, _code: os.kill(os.getpid(), signal.SIGTERM))
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            click.echo(
                f"ProxNS Lab dashboard: http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs)"
            )
            if not sup.stop_requested.is_set():
                uvicorn.run(
                    "api.main:create_app",
                    factory=True,
                    host=host,
                    port=port,
                    workers=api_workers,
                    log_level="info",
                    timeout_graceful_shutdown=5,
                )
        finally:
            sup.stop()
    click.echo("stopped")
    sys.exit(sup.exit_code)
