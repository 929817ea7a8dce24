"""Engines and sessions for SQLite (the embedded default) and Postgres (the distributed set-up)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(
    url: str,
    pool_size: int = 10,
    connect_timeout: int = 5,
    statement_timeout_ms: int = 30000,
    pre_ping: bool = True,
) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so API and worker can share it.

    Postgres connections are checked before use (``pool_pre_ping``: a restarted server or a killed
    backend costs one reconnect, not a failed job), and opening one and every statement time out.
    ``pre_ping=False`` is for a caller that retries a disconnect itself and cannot afford the extra
    round trip per checkout (the job list's version read, once per request).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict = {"connect_timeout": connect_timeout}
        if parsed.get_backend_name() == "postgresql":
            connect_args |= {
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            }
            if statement_timeout_ms:
                connect_args["options"] = f"-c statement_timeout={statement_timeout_ms}"
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=2 * pool_size,
            pool_recycle=1800,
            pool_pre_ping=pre_ping,
            pool_timeout=10,
            connect_args=connect_args,
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API connection
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit, so responses can be built from them."""
    return sessionmaker(engine, expire_on_commit=False)


def ping(engine: Engine) -> bool:
    """True when the database answers ``SELECT 1``."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable" for the health check
        return False
