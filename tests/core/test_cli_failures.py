"""Every `proxns` command fails the same way: one `error: ` line on stderr, exit code 2, no traceback.

Real processes throughout: the console script on bad files and folders, `proxns serve` on a missing
database and a busy port, and the client commands against a real `proxns serve --workers 0`
(SQLite in a temporary folder), a closed port and a stub server that answers 500.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from proxns_core.spec import TrainConfig
from proxns_testkit import PG_ADMIN_URL, REPO, free_port

PG_URL = PG_ADMIN_URL
MISSING_DB = "no_such_db_xyz"


#: The admin token of the module's real server (written by its first start), sent by every client command.
SERVER_TOKEN: dict[str, str] = {}


def env_without_settings(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXNS_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if "token" in SERVER_TOKEN:
        env["PROXNS_TOKEN"] = SERVER_TOKEN["token"]
    env.update({f"PROXNS_{k.upper()}": v for k, v in settings.items()})
    return env


def proxns(*args: str, cwd: Path | None = None, timeout: float = 60, **settings: str):
    return subprocess.run(
        [sys.executable, "-m", "proxns_cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env_without_settings(**settings),
        timeout=timeout,
    )


def assert_fails(proc: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit code 2, exactly one stderr line starting `error: ` that holds ``expected``; no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `proxns serve --workers 0` on SQLite in a temporary folder."""
    tmp = tmp_path_factory.mktemp("serve")
    port = free_port()
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxns_cli", "serve", "--workers", "0", "--port", str(port)],
        cwd=tmp,
        env=env_without_settings(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp / "serve.log").read_text()
            assert time.monotonic() < deadline, "proxns serve did not answer /healthz"
            time.sleep(0.2)
        SERVER_TOKEN["token"] = (tmp / "var" / "admin-token").read_text().strip()
        yield url
    finally:
        SERVER_TOKEN.clear()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"<html>\n<body>\nInternal Server Error\n</body>\n</html>\n"
        self.send_response(500)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def failing_server() -> Iterator[str]:
    """A stub that answers every GET with a multi-line HTML 500."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# --------------------------------------------------------------------------- proxns submit: the file


def _unreadable(tmp: Path) -> str:
    path = tmp / "secret.yaml"
    path.write_text("arch: vgg\n")
    path.chmod(0)
    # root reads anything: a file that exists and fails to read instead.
    return str(path) if not os.access(path, os.R_OK) else "/proc/self/mem"


SUBMIT_FILES: dict[str, tuple[Callable[[Path], str], str]] = {
    "missing": (lambda t: str(t / "nope.yaml"), "no such file"),
    "folder": (lambda t: str(t), "is a folder"),
    "unreadable": (_unreadable, "cannot read"),
    "binary": (lambda t: _write(t / "x.yaml", b"\xff\xfe\x00junk"), "not a text file"),
    "bad yaml": (lambda t: _write(t / "x.yaml", b"arch: [vgg\ndepth: 11\n"), "not valid YAML/JSON"),
    "bad json": (lambda t: _write(t / "x.json", b'{"arch": "vgg",}'), "not valid JSON"),
    "a list": (lambda t: _write(t / "x.yaml", b"- arch\n- vgg\n"), "expected a mapping"),
    "a string": (lambda t: _write(t / "x.json", b'"vgg"'), "expected a mapping"),
    "empty": (lambda t: _write(t / "x.yaml", b""), "is empty"),
}


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("case", list(SUBMIT_FILES))
def test_submit_refuses_a_config_file_it_cannot_use(tmp_path: Path, case: str) -> None:
    make, reason = SUBMIT_FILES[case]
    path = make(tmp_path)
    # The file is checked before the server is asked: the default server need not be up.
    assert_fails(proxns("submit", path, "--server", "http://127.0.0.1:9"), path, reason)


# --------------------------------------------------------------------------- client: server URL and answers


@dataclass
class ClientCase:
    args: list[str]
    expected: list[str]
    server: str | None = None  # "real", "failing", "closed", or a literal --server value
    env_server: str | None = None


CLIENT_CASES: dict[str, ClientCase] = {
    "no scheme": ClientCase(
        ["jobs"], ["--server '127.0.0.1:8000'", "expected http://HOST:PORT"], "127.0.0.1:8000"
    ),
    "no scheme, show": ClientCase(["show", "1"], ["expected http://"], "localhost:8000"),
    "no scheme, env": ClientCase(
        ["jobs"], ["PROXNS_SERVER", "expected http://"], env_server="127.0.0.1:8000"
    ),
    "ftp": ClientCase(["jobs"], ["expected http://"], "ftp://127.0.0.1:8000"),
    "unreachable": ClientCase(["jobs"], ["cannot reach http://127.0.0.1:"], "closed"),
    "unreachable, download": ClientCase(["download", "1"], ["cannot reach"], "closed"),
    "404": ClientCase(["show", "999999"], ["HTTP 404"], "real"),
    "404, download": ClientCase(["download", "999999"], ["HTTP 404"], "real"),
    "500": ClientCase(["jobs"], ["HTTP 500", "Internal Server Error"], "failing"),
    "weights id": ClientCase(
        ["weights", "delete", "my-upload"], ["'my-upload' is not an upload id"], "closed"
    ),
    "weights ref": ClientCase(["weights", "delete", "weights:999999"], ["HTTP 404"], "real"),
}


@pytest.mark.parametrize("case", list(CLIENT_CASES))
def test_client_commands_fail_with_one_line(
    case: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    c = CLIENT_CASES[case]
    server = {
        "real": lambda: request.getfixturevalue("server"),
        "failing": lambda: request.getfixturevalue("failing_server"),
        "closed": lambda: f"http://127.0.0.1:{free_port()}",
    }.get(c.server, lambda: c.server)()
    args = [*c.args] + (["--server", server] if server else [])
    settings = {"server": c.env_server} if c.env_server else {}
    assert_fails(proxns(*args, cwd=tmp_path, **settings), *c.expected)
    assert not list(tmp_path.iterdir()), "a failed command left a file behind"


@pytest.mark.parametrize("token", ["", "pxn_not-a-token"])
def test_client_commands_without_a_valid_token_say_how_to_get_one(server: str, token: str) -> None:
    line = assert_fails(
        proxns("jobs", "--server", server, token=token), "HTTP 401", "set PROXNS_TOKEN or --token"
    )
    assert "proxns user create" in line


def test_submit_of_an_invalid_config_lists_the_fields_on_one_line(server: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: resnet\ndepth: 100\nwidth: 9\n")
    line = assert_fails(proxns("submit", str(bad), "--server", server), "HTTP 422")
    assert "depth 100 is not valid for resnet" in line and "; width:" in line


def test_submit_and_jobs_say_why_a_job_waits_when_no_worker_is_registered(
    server: str, tmp_path: Path
) -> None:
    config = tmp_path / "ok.yaml"
    config.write_text("dataset: digits\narch: vgg\ndepth: 11\nwidth: 0.25\nepochs: 1\n")
    submitted = proxns("submit", str(config), "--server", server)
    assert submitted.returncode == 0, submitted.stderr
    assert "queued (waiting: no worker is registered yet" in submitted.stdout
    listed = proxns("jobs", "--server", server)
    assert listed.returncode == 0, listed.stderr
    assert "waiting: no worker is registered yet" in listed.stdout


def test_download_into_a_missing_folder_fails_before_asking_the_server(server: str, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "model.onnx"
    # Job 999999 does not exist: had the server been asked, the error would be its 404.
    assert_fails(
        proxns("download", "999999", "-o", str(target), "--server", server),
        f"-o {target}",
        "does not exist",
    )
    assert not (tmp_path / "no").exists()


# --------------------------------------------------------------------------- proxns serve


def _pg_has_database(name: str) -> bool | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    except Exception:  # noqa: BLE001 - Postgres is not running here: nothing to check
        return None
    return row is not None


def test_serve_on_a_missing_postgres_database_fails_before_starting(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{MISSING_DB}"
    proc = proxns("serve", "--port", str(free_port()), cwd=tmp_path, database_url=url)
    assert_fails(proc, "database postgresql+psycopg://postgres@127.0.0.1:5432/no_such_db_xyz")
    assert "dashboard" not in proc.stdout
    assert _pg_has_database(MISSING_DB) in (False, None)
    assert not (tmp_path / "var").exists()


def test_serve_on_a_sqlite_file_whose_folder_cannot_be_made_fails(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    url = f"sqlite:///{tmp_path / 'a-file' / 'sub' / 'proxns.db'}"
    proc = proxns("serve", "--port", str(free_port()), "--workers", "0", cwd=tmp_path, database_url=url)
    assert_fails(proc, "database sqlite:///", "cannot create it")
    assert "dashboard" not in proc.stdout


def test_serve_on_a_busy_port_fails_before_touching_the_database(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = proxns("serve", "--port", str(port), "--workers", "0", cwd=tmp_path)
    assert_fails(proc, f"port {port} on 127.0.0.1 is already in use")
    assert "dashboard" not in proc.stdout
    assert not (tmp_path / "var").exists()


# --------------------------------------------------------------------------- proxns train --out

SMALL = {"dataset": "synthetic", "arch": "vgg", "depth": 11, "width": 0.125, "epochs": 2, "device": "cuda:99"}
SMALL_FLAGS = [f"--{k}={v}" for k, v in SMALL.items()]


def _previous_run(folder: Path, **changes: object) -> dict[str, tuple[bytes, int]]:
    """A folder holding a finished-looking run; its files' bytes and mtimes."""
    folder.mkdir(parents=True, exist_ok=True)
    config = TrainConfig.model_validate({**SMALL, **changes}).model_dump()
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    (folder / "checkpoint.pt").write_bytes(b"not really a checkpoint")
    (folder / "result.json").write_text('{"acc_full": 0.5}')
    (folder / "slim.onnx").write_bytes(b"onnx")
    old = time.time() - 3600
    for f in folder.iterdir():
        os.utime(f, (old, old))
    return _snapshot(folder)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in sorted(folder.iterdir())}


TRAIN_REFUSALS: dict[str, tuple[list[str], dict, list[str]]] = {
    # flags, changes to the previous run's config, expected text
    "holds a run": ([], {}, ["already holds a run", "config.json", "--resume", "--overwrite"]),
    "resume, other config": (
        ["--resume"],
        {"epochs": 3},
        ["--resume: the config differs", "--epochs 3 -> 2"],
    ),
    "resume and overwrite": (["--resume", "--overwrite"], {}, ["give one of them"]),
}


@pytest.mark.parametrize("case", list(TRAIN_REFUSALS))
def test_train_refuses_an_out_folder_holding_another_run_and_leaves_it_alone(
    tmp_path: Path, case: str
) -> None:
    flags, changes, expected = TRAIN_REFUSALS[case]
    out = tmp_path / "run"
    before = _previous_run(out, **changes)
    assert_fails(proxns("train", *SMALL_FLAGS, "--out", str(out), *flags), *expected)
    assert _snapshot(out) == before


def test_train_refuses_an_out_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert_fails(proxns("train", *SMALL_FLAGS, "--out", str(tmp_path / "f")), "is a file")
    assert (tmp_path / "f").read_text() == "x"


def test_train_config_file_problems_are_one_line(tmp_path: Path) -> None:
    assert_fails(proxns("train", "--config", str(tmp_path / "nope.yaml")), "--config", "no such file")
    assert_fails(proxns("train", "--config", str(tmp_path)), "--config", "is a folder")


def test_overwrite_removes_the_previous_run_and_resume_accepts_the_same_config(tmp_path: Path) -> None:
    # cuda:99 exists nowhere: the run stops at the device check (DeviceUnavailableError), after --out
    # was prepared, so both flags are seen working without training anything.
    out = tmp_path / "run"
    _previous_run(out)
    assert_fails(proxns("train", *SMALL_FLAGS, "--out", str(out), "--resume"), "cuda:99")
    assert (out / "checkpoint.pt").exists() and (out / "result.json").exists()

    _previous_run(out, epochs=3)
    assert_fails(proxns("train", *SMALL_FLAGS, "--out", str(out), "--overwrite"), "cuda:99")
    # The previous run is gone, and a run that never trained leaves nothing that makes a run.
    assert sorted(f.name for f in out.iterdir()) == []
    # So the corrected command is not refused: it gets as far as its own (new) device error.
    fixed = [f for f in SMALL_FLAGS if not f.startswith("--device")] + ["--device=cuda:98"]
    assert_fails(proxns("train", *fixed, "--out", str(out)), "cuda:98")

    empty = tmp_path / "empty"
    empty.mkdir()
    assert_fails(proxns("train", *SMALL_FLAGS, "--out", str(empty)), "cuda:99")


def test_the_console_script_and_its_client_commands_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from proxns_cli import main\n"
        "for argv in (['--help'], ['jobs', '--help'], ['serve', '--help'], ['submit', 'nope.yaml']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'torch' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
