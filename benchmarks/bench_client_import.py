"""What a light client pays at start-up, before and after (issue 8): ``import api.main`` and ``proxns jobs``.

"after" is this working tree; "before" is a git ref (default 517a3c5, the last commit before the
work), checked out with ``git worktree add --detach`` under /tmp and removed at the end. Every
measurement is a fresh Python process with its tree first on PYTHONPATH (and as cwd):

  (a) the time ``import api.main`` takes inside the process, and whether torch ended up imported;
  (b) the wall time of a whole ``proxns jobs --server URL`` process, against one server started once
      from this tree (``python -m proxns_cli serve --workers 0``, SQLite + filesystem queue in a temp dir).

Before and after runs alternate (before/after, then after/before, ...) so that drift of the machine
cancels out. Prints median and min of each, the before/after ratio (> 1: after is faster) and, for
the after tree, the five largest cumulative entries of ``python -X importtime -c 'import api.main'``.

    python benchmarks/bench_client_import.py [--before REF] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from proxns_testkit import (  # noqa: E402
    REPO,
    TINY_JOB,
    descendants,
    free_port,
    service_env,
    stop_process,
    wait_healthy,
)

IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import api.main; dt = time.perf_counter() - t; "
    "import sys; print('BENCH', dt, 'torch' in sys.modules)"
)
#: Prepended to the client command in an untimed probe run: reports whether torch got imported.
TORCH_PROBE = (
    "import atexit, sys; "
    "atexit.register(lambda: print('BENCH-TORCH', 'torch' in sys.modules, file=sys.stderr)); "
)


@dataclass
class Tree:
    label: str
    path: Path
    import_s: list[float] = field(default_factory=list)
    import_torch: set[bool] = field(default_factory=set)
    cli_s: list[float] = field(default_factory=list)
    cli_torch: bool | None = None
    #: The token of this tree's server (a tree from before authentication has none, and ignores it).
    token: str | None = None

    def env(self) -> dict[str, str]:
        """No inherited PROXNS_* settings but the token; this tree first on PYTHONPATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROXNS_")}
        env["PYTHONPATH"] = str(self.path) + os.pathsep + env.get("PYTHONPATH", "")
        if self.token:
            env["PROXNS_TOKEN"] = self.token
        return env

    def cli_code(self, url: str) -> str:
        """The client process's code. Both 517a3c5 and later have ``proxns_cli`` with ``jobs --server``;
        a tree without that package would need its own command here."""
        if not (self.path / "proxns_cli" / "__init__.py").exists():
            raise SystemExit(f"{self.label} tree {self.path} has no proxns_cli package: add a command for it")
        return f"import sys; sys.argv = ['proxns', 'jobs', '--server', {url!r}]; from proxns_cli import main; main()"

    def python(self, code: str, *flags: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, *flags, "-c", code],
            cwd=self.path,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{self.label}: python -c {code!r} exited with {proc.returncode}:\n{proc.stderr[-3000:]}"
            )
        return proc

    def measure_import(self) -> None:
        proc = self.python(IMPORT_SNIPPET)
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH "))
        _, seconds, torch = line.split()
        self.import_s.append(float(seconds))
        self.import_torch.add(torch == "True")

    def measure_cli(self, url: str) -> None:
        code = self.cli_code(url)
        t0 = time.perf_counter()
        self.python(code)
        self.cli_s.append(time.perf_counter() - t0)

    def warm_up(self, url: str) -> None:
        """Untimed: writes the bytecode caches of a fresh checkout, and probes torch in the client."""
        self.python(IMPORT_SNIPPET)
        proc = self.python(TORCH_PROBE + self.cli_code(url))
        self.cli_torch = "BENCH-TORCH True" in proc.stderr


def add_worktree(ref: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"proxns-bench-before-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(path), ref],
        check=True,
    )
    return path


def remove_worktree(path: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False)


def start_server(tmp: Path, tree: Path = REPO) -> tuple[subprocess.Popen, str, str | None]:
    """``proxns serve --workers 0`` of ``tree`` over SQLite and the filesystem queue in ``tmp``
    (started there, so its first start writes tmp/var/admin-token); returns the admin token too
    (None from a tree without authentication)."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = service_env(
        database_url=f"sqlite:///{tmp}/db.sqlite",
        broker_url="filesystem://",
        broker_dir=str(tmp / "broker"),
        artifact_dir=str(tmp / "art"),
    )
    cmd = [sys.executable, "-m", "proxns_cli", "serve", "--workers", "0", "--port", str(port)]
    log = (tmp / "serve.log").open("w")
    env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=180)
    except BaseException:
        stop_server(proc)
        print((tmp / "serve.log").read_text()[-3000:], file=sys.stderr)
        raise
    token_file = tmp / "var" / "admin-token"
    return proc, url, token_file.read_text().strip() if token_file.exists() else None


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server by its PID, then any of its own children that outlived it."""
    children = descendants(proc.pid)
    stop_process(proc)
    for pid in children:
        try:
            os.kill(pid, 9)
        except (ProcessLookupError, PermissionError):
            pass


def seed_jobs(url: str, token: str | None, n: int = 3) -> None:
    """A few queued jobs (no worker runs them), so that ``proxns jobs`` prints a table, not nothing."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        for seed in range(n):
            r = client.post("/api/jobs", json={**TINY_JOB, "seed": seed})
            if r.status_code >= 300:
                print(f"warning: POST /api/jobs answered {r.status_code}: {r.text[:200]}", file=sys.stderr)
                return


def importtime_top(tree: Tree, n: int = 5) -> list[tuple[int, int, str]]:
    """(cumulative us, self us, module) of the ``n`` largest cumulative entries of ``-X importtime``."""
    proc = tree.python("import api.main", "-X", "importtime")
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        rows.append((int(cumulative_us), int(self_us), name.rstrip()))
    return sorted(rows, reverse=True)[:n]


def yes_no(values: set[bool] | bool | None) -> str:
    if values is None:
        return "?"
    if isinstance(values, bool):
        return "yes" if values else "no"
    return "/".join("yes" if v else "no" for v in sorted(values, reverse=True)) or "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", default="517a3c5", help="git ref of the 'before' tree (default: 517a3c5)")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per tree and figure (default: 5)")
    parser.add_argument("--no-importtime", action="store_true", help="skip the -X importtime breakdown")
    args = parser.parse_args()

    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", args.before],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    before_path = add_worktree(args.before)
    before, after = Tree(f"before ({commit})", before_path), Tree("after (working tree)", REPO)
    servers: list[subprocess.Popen] = []
    try:
        with tempfile.TemporaryDirectory(prefix="proxns-bench-client-") as tmp:
            # Each tree's client talks to its own tree's server (a tree from before authentication
            # has a client that cannot send a token).
            urls: dict[str, str] = {}
            try:
                for name, tree in (("before", before), ("after", after)):
                    server, urls[name], tree.token = start_server(Path(tmp) / name, tree.path)
                    servers.append(server)
                    seed_jobs(urls[name], tree.token)
                url_of = {id(before): urls["before"], id(after): urls["after"]}
                for tree in (before, after):
                    tree.warm_up(url_of[id(tree)])
                for i in range(args.repeat):
                    order = (before, after) if i % 2 == 0 else (after, before)
                    for tree in order:
                        tree.measure_import()
                    for tree in order:
                        tree.measure_cli(url_of[id(tree)])
                    print(f"  round {i + 1}/{args.repeat} done", file=sys.stderr)
            finally:
                for server in servers:
                    stop_server(server)
    finally:
        remove_worktree(before_path)

    def row(what: str, tree: Tree, values: list[float], torch: str) -> str:
        return (
            f"{what:<22} {tree.label:<22} {statistics.median(values):>8.3f} {min(values):>8.3f}  {torch:>5}"
        )

    def ratio(values_before: list[float], values_after: list[float]) -> str:
        med = statistics.median(values_before) / statistics.median(values_after)
        low = min(values_before) / min(values_after)
        return f"{'':<22} {'ratio before/after':<22} {med:>7.2f}x {low:>7.2f}x"

    print()
    print(f"{sys.implementation.name} {sys.version.split()[0]}, {args.repeat} runs per tree, alternating")
    print(f"{'measure':<22} {'tree':<22} {'median s':>8} {'min s':>8}  {'torch':>5}")
    print(row("import api.main", before, before.import_s, yes_no(before.import_torch)))
    print(row("import api.main", after, after.import_s, yes_no(after.import_torch)))
    print(ratio(before.import_s, after.import_s))
    print(row("proxns jobs (wall)", before, before.cli_s, yes_no(before.cli_torch)))
    print(row("proxns jobs (wall)", after, after.cli_s, yes_no(after.cli_torch)))
    print(ratio(before.cli_s, after.cli_s))
    print()
    print(
        f"Summary: import api.main {statistics.median(before.import_s):.3f} s -> "
        f"{statistics.median(after.import_s):.3f} s "
        f"({statistics.median(before.import_s) / statistics.median(after.import_s):.2f}x), "
        f"proxns jobs {statistics.median(before.cli_s):.3f} s -> {statistics.median(after.cli_s):.3f} s "
        f"({statistics.median(before.cli_s) / statistics.median(after.cli_s):.2f}x) (medians); "
        f"torch loaded by api.main: before {yes_no(before.import_torch)}, after {yes_no(after.import_torch)}"
    )

    if not args.no_importtime:
        print()
        print("python -X importtime -c 'import api.main' (after tree), top 5 cumulative:")
        print(f"{'cumulative ms':>14} {'self ms':>9}  module")
        for cumulative_us, self_us, name in importtime_top(after):
            print(f"{cumulative_us / 1000:>14.1f} {self_us / 1000:>9.1f}  {name}")


if __name__ == "__main__":
    main()
