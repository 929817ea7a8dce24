"""``proxns serve``: the API and the training workers on one machine. Torch-free (workers are children)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
from pathlib import Path

import click

from .common import fail, one_line
from .supervise import Supervisor

#: Where the first start writes the admin's token: ``var/admin-token`` under the folder serve is
#: started in (beside the default SQLite file and queue), readable only by its owner.
ADMIN_TOKEN_FILE = Path("var") / "admin-token"


def write_secret(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``, mode 0600 from the start (never world-readable, not even
    briefly); an existing file is not overwritten (FileExistsError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def ensure_first_admin(database_url: str, token_file: Path = ADMIN_TOKEN_FILE) -> str | None:
    """When no user exists yet: create user ``admin`` (an admin) and write its token to
    ``token_file``. Returns a line to print (never the token), or None when users already exist."""
    from store.db import make_engine, make_sessionmaker
    from store.models import User
    from store.users import any_user, issue_token

    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            if any_user(session):
                if token_file.exists():
                    return f"the first admin's token is in {token_file.resolve()} (delete it once copied)"
                return None
            admin = User(name="admin", is_admin=True)
            session.add(admin)
            session.flush()
            _, token = issue_token(session, admin, label="first start", commit=False)
            try:
                write_secret(token_file, token)
            except FileExistsError:
                session.rollback()
                fail(
                    f"{token_file} exists but database has no user yet: it holds the token of another "
                    "database; move it away (or start serve in another folder) and start again"
                )
            except OSError as err:
                session.rollback()
                fail(f"cannot write the admin token to {token_file} ({err.strerror or err})")
            session.commit()
    finally:
        engine.dispose()
    return (
        f"first start: created user admin; its API token is in {token_file.resolve()} (readable only by "
        "you); sign in with it, or: export PROXNS_TOKEN=$(cat var/admin-token)"
    )


def allowed_hosts_env(host: str) -> str | None:
    """PROXNS_ALLOWED_HOSTS for the API when serve listens on ``host``: the defaults plus ``host``
    itself (not 0.0.0.0 / ::); None when the variable is already set or nothing is to be added."""
    if os.environ.get("PROXNS_ALLOWED_HOSTS") is not None or host in ("0.0.0.0", "::", ""):
        return None
    defaults = ["127.0.0.1", "localhost", "[::1]"]
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if name.lower() in defaults:
        return None
    return ",".join([*defaults, name.lower()])


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
    A busy port or an unreachable database fails before anything starts. On the first start (no user
    yet) it creates user admin and writes its API token to ./var/admin-token (mode 0600).
    """
    import uvicorn

    from store.settings import Settings

    settings = Settings()
    check_port_free(host, port)
    shown_db = prepare_database(settings.database_url)
    click.echo(f"database {shown_db} is up to date")
    first = ensure_first_admin(settings.database_url)
    if first:
        click.echo(first)
    hosts = allowed_hosts_env(host)
    if hosts:
        os.environ["PROXNS_ALLOWED_HOSTS"] = hosts  # read by the API processes' Settings

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
