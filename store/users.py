"""Users and their API tokens: every write and the one lookup each request needs.

A token is ``pxn_`` + 32 random bytes (URL-safe base64), shown once when issued; the store keeps
only its hex SHA-256 (``api_tokens.token_hash``, unique, so verifying is one indexed lookup). A fast
hash is enough for random high-entropy tokens (code hosts store theirs the same way); a slow password
hash would cost tens of milliseconds on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import ApiToken, User, utcnow

TOKEN_PREFIX = "pxn_"
#: User names: letters, digits and ``._-``, 1 to 64 characters.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: ``last_used_at`` is written at most this often per token (a write per request would cost more
#: than the request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


class UserError(ValueError):
    """A user or token operation that cannot be done (one line, for the CLI)."""


@dataclass(frozen=True)
class Principal:
    """Who a verified token belongs to."""

    id: int
    name: str
    is_admin: bool
    token_id: int


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def any_user(session: Session) -> bool:
    return session.scalar(select(func.count(User.id))) > 0


def get_user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise UserError(f"no user named {name!r}")
    return user


def create_user(session: Session, name: str, is_admin: bool = False) -> User:
    """Add a user (committed); a taken or malformed name raises UserError."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(f"user name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-'")
    user = User(name=name, is_admin=is_admin, created_at=utcnow())
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise UserError(f"a user named {name!r} already exists") from None
    return user


def issue_token(
    session: Session, user: User | int, label: str = "", commit: bool = True
) -> tuple[ApiToken, str]:
    """A new token for ``user``: its row and its text (shown once; only the hash is stored)."""
    user_id = user if isinstance(user, int) else user.id
    token = new_token()
    row = ApiToken(user_id=user_id, token_hash=hash_token(token), name=label[:200], created_at=utcnow())
    session.add(row)
    if commit:
        session.commit()
    else:
        session.flush()
    return row, token


def verify_token(session: Session, token: str) -> Principal | None:
    """The user of a valid, unrevoked token, else None: one lookup by the unique hash."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    row = session.execute(
        select(ApiToken.id, ApiToken.token_hash, ApiToken.last_used_at, User.id, User.name, User.is_admin)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
    ).one_or_none()
    if row is None or not hmac.compare_digest(row[1], digest):
        return None
    now = utcnow()
    last = row[2]
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    if last is None or now - last > LAST_USED_RESOLUTION:
        session.execute(update(ApiToken).where(ApiToken.id == row[0]).values(last_used_at=now))
        session.commit()
    return Principal(id=row[3], name=row[4], is_admin=bool(row[5]), token_id=row[0])


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.id)).scalars())


def list_tokens(session: Session, name: str) -> list[ApiToken]:
    user = get_user(session, name)
    return list(
        session.execute(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)).scalars()
    )


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Revoke a token by id (revoking it again is harmless); an unknown id raises UserError."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise UserError(f"no token with id {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return row


def when(dt: datetime | None) -> str:
    return "-" if dt is None else dt.strftime("%Y-%m-%d %H:%M:%S")
