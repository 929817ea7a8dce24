"""Authentication and ownership (issue 9, item 3): the auth matrix over the in-process API (real
SQLite store and filesystem queue), tokens stored only as SHA-256, the `proxns user` commands and
`proxns serve`'s first admin."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from api.main import create_app
from proxns_testkit import REPO, TINY_JOB, create_token, embedded_settings
from store import Artifact, Job, make_engine, make_sessionmaker

PUBLIC = ["/healthz", "/openapi.json", "/docs"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict]:
    """One app (tokens looked up on every request), users alice, bob and an admin, and alice's job
    with a model file and her experiment."""
    settings = embedded_settings(tmp_path).model_copy(update={"token_cache_seconds": 0})
    tokens = {
        "alice": create_token(settings.database_url, "alice", admin=False),
        "bob": create_token(settings.database_url, "bob", admin=False),
        "root": create_token(settings.database_url, "root", admin=True),
    }
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        alice = bearer(tokens["alice"])
        job = client.post("/api/jobs", json=TINY_JOB, headers=alice).json()
        exp = client.post(
            "/api/experiments",
            json={"name": "hers", "base": TINY_JOB, "sweep": {"lam": [0.1]}},
            headers=alice,
        ).json()
        folder = Path(settings.artifact_dir) / str(job["id"])
        folder.mkdir(parents=True)
        (folder / "slim.onnx").write_bytes(b"onnx")
        engine = make_engine(settings.database_url)
        with make_sessionmaker(engine)() as s:
            s.add(
                Artifact(
                    job_id=job["id"],
                    name="slim.onnx",
                    format="onnx",
                    bytes=4,
                    sha256=hashlib.sha256(b"onnx").hexdigest(),
                    location=f"{job['id']}/slim.onnx",
                )
            )
            s.commit()
        yield {
            "client": client,
            "tokens": tokens,
            "job": job,
            "exp": exp,
            "settings": settings,
            "engine": engine,
        }
        engine.dispose()


def every_api_operation(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    ops = []
    for path, methods in paths.items():
        if not path.startswith("/api"):
            continue
        concrete = (
            path.replace("{job_id}", "1").replace("{experiment_id}", "1").replace("{name}", "slim.onnx")
        )
        ops += [(method.upper(), concrete) for method in methods]
    return ops


def test_every_api_route_needs_a_valid_token_and_the_public_ones_do_not(world: dict) -> None:
    client = world["client"]
    ops = every_api_operation(client)
    assert len(ops) >= 12
    bad_headers = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "Bearer pxn_not-a-real-token"},
        {"Authorization": "Bearer " + world["tokens"]["alice"] + "x"},
        {"Authorization": "Bearer " + "a" * 5000},
    ]
    for method, path in ops:
        for headers in bad_headers:
            response = client.request(
                method, path, headers=headers, json=TINY_JOB if method == "POST" else None
            )
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert isinstance(response.json()["detail"], str)
    for path in PUBLIC:
        assert client.get(path).status_code in (200, 503), path  # healthz may say degraded
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())  # /docs' Authorize button


def test_me_says_who_the_token_belongs_to(world: dict) -> None:
    client, tokens = world["client"], world["tokens"]
    me = client.get("/api/me", headers=bearer(tokens["alice"])).json()
    assert me["name"] == "alice" and me["is_admin"] is False and isinstance(me["id"], int)
    assert client.get("/api/me", headers=bearer(tokens["root"])).json()["is_admin"] is True


def test_another_users_job_experiment_and_file_are_not_found_and_not_listed(world: dict) -> None:
    client, tokens, job, exp = world["client"], world["tokens"], world["job"], world["exp"]
    j, e = job["id"], exp["id"]
    reads = [
        f"/api/jobs/{j}",
        f"/api/jobs/{j}/metrics",
        f"/api/jobs/{j}/artifacts",
        f"/api/jobs/{j}/artifacts/slim.onnx",
        f"/api/experiments/{e}",
    ]
    bob = bearer(tokens["bob"])
    for path in reads:
        response = client.get(path, headers=bob)
        assert response.status_code == 404, (path, response.text)
    assert client.post(f"/api/jobs/{j}/cancel", headers=bob).status_code == 404
    assert client.get("/api/jobs", headers=bob).json()["total"] == 0
    assert client.get("/api/jobs", params={"experiment_id": e}, headers=bob).json()["total"] == 0
    assert client.get("/api/experiments", headers=bob).json()["total"] == 0
    assert client.get(f"/api/jobs/{j}", headers=bearer(tokens["alice"])).json()["status"] == "queued"

    # Its owner and an admin see and act on it.
    for who in ("alice", "root"):
        headers = bearer(tokens[who])
        for path in reads:
            assert client.get(path, headers=headers).status_code == 200, (who, path)
        assert client.get("/api/jobs", headers=headers).json()["total"] == 2
        assert client.get("/api/experiments", headers=headers).json()["total"] == 1
    assert client.get(f"/api/jobs/{j}/artifacts/slim.onnx", headers=bearer(tokens["root"])).content == b"onnx"
    assert (
        client.post(f"/api/jobs/{j}/cancel", headers=bearer(tokens["root"])).json()["status"] == "cancelled"
    )


def test_a_revoked_token_is_refused(world: dict) -> None:
    from store.users import revoke_token

    client, settings = world["client"], world["settings"]
    token = create_token(settings.database_url, "alice")
    assert client.get("/api/jobs", headers=bearer(token)).status_code == 200
    with make_sessionmaker(world["engine"])() as s:
        token_id = s.execute(
            text("SELECT id FROM api_tokens WHERE token_hash = :h"),
            {"h": hashlib.sha256(token.encode()).hexdigest()},
        ).scalar_one()
        revoke_token(s, token_id)
    response = client.get("/api/jobs", headers=bearer(token))
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert (
        client.get("/api/jobs", headers=bearer(world["tokens"]["alice"])).status_code == 200
    )  # her others work


def test_a_cross_site_cancel_is_refused_and_the_job_stays_queued(world: dict) -> None:
    client, job = world["client"], world["job"]
    foreign = {"Content-Type": "text/plain", "Origin": "https://evil.example"}
    response = client.post(f"/api/jobs/{job['id']}/cancel", content="x", headers=foreign)
    assert response.status_code == 401
    assert "access-control-allow-origin" not in response.headers  # no CORS unless configured
    # Even with a token, a state-changing request whose body is not JSON is refused.
    with_token = {**foreign, **bearer(world["tokens"]["alice"])}
    assert client.post(f"/api/jobs/{job['id']}/cancel", content="x", headers=with_token).status_code == 415
    assert client.post("/api/jobs", content="{}", headers=with_token).status_code == 415
    assert (
        client.get(f"/api/jobs/{job['id']}", headers=bearer(world["tokens"]["alice"])).json()["status"]
        == "queued"
    )
    preflight = client.options(
        f"/api/jobs/{job['id']}/cancel",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_a_wrong_host_header_is_refused(world: dict) -> None:
    client = world["client"]
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    assert (
        client.get("/api/me", headers={"Host": "evil.example", **bearer(world["tokens"]["root"])}).status_code
        == 400
    )
    for host in ("localhost", "127.0.0.1:8000", "[::1]:8000"):
        assert client.get("/healthz", headers={"Host": host}).status_code in (200, 503), host


def test_configured_cors_origins_get_cors_headers(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path).model_copy(update={"cors_origins": ["https://lab.example"]})
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        preflight = client.options(
            "/api/jobs",
            headers={
                "Origin": "https://lab.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "https://lab.example"


def test_tokens_are_stored_only_as_their_sha256(world: dict) -> None:
    with world["engine"].connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT * FROM api_tokens"))]
    dump = repr(rows)
    for token in world["tokens"].values():
        assert token.startswith("pxn_") and len(token) > 40
        assert token not in dump and token[4:] not in dump
        assert hashlib.sha256(token.encode()).hexdigest() in dump


def test_idempotency_keys_and_queue_limits_are_per_user(world: dict) -> None:
    client, tokens = world["client"], world["tokens"]
    key = {"Idempotency-Key": "same-key"}
    a = client.post("/api/jobs", json=TINY_JOB, headers={**key, **bearer(tokens["alice"])})
    b = client.post("/api/jobs", json=TINY_JOB, headers={**key, **bearer(tokens["bob"])})
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    again = client.post("/api/jobs", json=TINY_JOB, headers={**key, **bearer(tokens["bob"])})
    assert again.status_code == 200 and again.json()["id"] == b.json()["id"]
    with make_sessionmaker(world["engine"])() as s:
        owners = dict(s.execute(select(Job.id, Job.owner_id)).all())
    assert owners[a.json()["id"]] != owners[b.json()["id"]]


def test_a_user_may_queue_at_most_max_queued_jobs_per_user(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path).model_copy(update={"max_queued_jobs_per_user": 2})
    alice, bob = (
        create_token(settings.database_url, "alice", False),
        create_token(settings.database_url, "bob", False),
    )
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        for _ in range(2):
            assert client.post("/api/jobs", json=TINY_JOB, headers=bearer(alice)).status_code == 201
        refused = client.post("/api/jobs", json=TINY_JOB, headers=bearer(alice))
        assert refused.status_code == 429 and "PROXNS_MAX_QUEUED_JOBS_PER_USER" in refused.json()["detail"]
        assert client.post("/api/jobs", json=TINY_JOB, headers=bearer(bob)).status_code == 201


# --------------------------------------------------------------------------- the commands


def proxns(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXNS_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update({f"PROXNS_{k.upper()}": v for k, v in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "proxns_cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


def test_proxns_user_commands_create_list_issue_and_revoke_tokens(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path).model_copy(update={"token_cache_seconds": 0})
    db = {"database_url": settings.database_url}
    created = proxns("user", "create", "carol", cwd=tmp_path, **db)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("pxn_") and "shown only now" in created.stderr
    again = proxns("user", "create", "carol", cwd=tmp_path, **db)
    assert again.returncode == 2 and again.stderr.strip() == "error: a user named 'carol' already exists"
    assert proxns("user", "create", "dave", "--admin", cwd=tmp_path, **db).returncode == 0
    listing = proxns("user", "list", cwd=tmp_path, **db).stdout
    assert "carol" in listing and "dave" in listing and "yes" in listing
    second = proxns("user", "token", "carol", "--label", "laptop", cwd=tmp_path, **db).stdout.strip()
    assert second.startswith("pxn_") and second != token

    with TestClient(create_app(settings), base_url="http://localhost") as client:
        assert client.get("/api/me", headers=bearer(token)).json()["name"] == "carol"
        assert client.get("/api/me", headers=bearer(second)).json()["name"] == "carol"
        tokens = proxns("user", "tokens", "carol", cwd=tmp_path, **db).stdout.splitlines()
        assert len(tokens) == 3 and "laptop" in tokens[2] and token not in "".join(tokens)
        first_id = tokens[1].split()[0]
        revoked = proxns("user", "revoke", first_id, cwd=tmp_path, **db)
        assert revoked.returncode == 0 and f"token {first_id} revoked" in revoked.stdout
        assert client.get("/api/me", headers=bearer(token)).status_code == 401
        assert client.get("/api/me", headers=bearer(second)).status_code == 200
    assert proxns("user", "revoke", "999", cwd=tmp_path, **db).stderr.strip() == "error: no token with id 999"
    assert proxns("user", "tokens", "nobody", cwd=tmp_path, **db).returncode == 2


def test_the_first_start_writes_the_admin_token_readable_only_by_its_owner(tmp_path: Path) -> None:
    from proxns_cli.common import CommandError
    from proxns_cli.serve import ensure_first_admin

    settings = embedded_settings(tmp_path).model_copy(update={"token_cache_seconds": 0})
    token_file = tmp_path / "var" / "admin-token"
    said = ensure_first_admin(settings.database_url, token_file)
    assert said and str(token_file.resolve()) in said
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert token not in said
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        me = client.get("/api/me", headers=bearer(token)).json()
        assert me["name"] == "admin" and me["is_admin"] is True
    # Later starts create nothing; they remind where the file is while it exists.
    assert "admin-token" in ensure_first_admin(settings.database_url, token_file)
    token_file.unlink()
    assert ensure_first_admin(settings.database_url, token_file) is None
    # A file left from another database is never overwritten.
    other = embedded_settings(tmp_path / "other")
    token_file.write_text("old")
    with pytest.raises(CommandError, match="exists but"):
        ensure_first_admin(other.database_url, token_file)
    assert token_file.read_text() == "old"
