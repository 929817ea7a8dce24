"""``proxns user``: users and API tokens, written straight into the database (PROXNS_DATABASE_URL,
migrated first, like ``proxns serve``). Torch-free."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from .common import fail, one_line
from .serve import prepare_database


@contextmanager
def _session() -> Iterator[Any]:
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import make_engine, make_sessionmaker
    from store.settings import Settings
    from store.users import UserError

    settings = Settings()
    shown = prepare_database(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    except UserError as err:
        fail(str(err))
    except SQLAlchemyError as err:
        fail(f"database {shown}: {one_line(str(getattr(err, 'orig', None) or err))}")
    finally:
        engine.dispose()


@click.group("user")
def user() -> None:
    """Users and their API tokens (in the database of PROXNS_DATABASE_URL)."""


@user.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="The user sees and acts on every user's jobs.")
def create(name: str, admin: bool) -> None:
    """Create user NAME and print its first API token (the only time it is shown)."""
    from store.users import create_user, issue_token

    with _session() as session:
        row = create_user(session, name, is_admin=admin)
        _, token = issue_token(session, row, label="created with the user")
    click.echo(f"user {name} created{' (admin)' if admin else ''}; its token (shown only now):", err=True)
    click.echo(token)


@user.command("list")
def list_users() -> None:
    """List the users."""
    from store.users import list_users as users
    from store.users import when

    with _session() as session:
        rows = users(session)
        click.echo(f"{'id':>4}  {'name':<24}  {'admin':<5}  created")
        for u in rows:
            click.echo(f"{u.id:>4}  {u.name:<24}  {'yes' if u.is_admin else 'no':<5}  {when(u.created_at)}")


@user.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for (shown by `proxns user tokens`).")
def token(name: str, label: str) -> None:
    """Issue another API token for user NAME and print it (the only time it is shown)."""
    from store.users import get_user, issue_token

    with _session() as session:
        row, text = issue_token(session, get_user(session, name), label=label)
        token_id = row.id
    click.echo(f"token {token_id} of {name} (shown only now):", err=True)
    click.echo(text)


@user.command("tokens")
@click.argument("name")
def tokens(name: str) -> None:
    """List user NAME's tokens (never their text): id, label, created, last used, revoked."""
    from store.users import list_tokens, when

    with _session() as session:
        rows = list_tokens(session, name)
        click.echo(f"{'id':>4}  {'label':<24}  {'created':<19}  {'last used':<19}  revoked")
        for t in rows:
            click.echo(
                f"{t.id:>4}  {t.name or '-':<24}  {when(t.created_at):<19}  {when(t.last_used_at):<19}  "
                f"{when(t.revoked_at) if t.revoked_at else 'no'}"
            )


@user.command("revoke")
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke the token with id TOKEN_ID (see `proxns user tokens NAME`); API processes refuse it
    within PROXNS_TOKEN_CACHE_SECONDS (default 5 s)."""
    from store.users import revoke_token

    with _session() as session:
        revoke_token(session, token_id)
    click.echo(f"token {token_id} revoked")
