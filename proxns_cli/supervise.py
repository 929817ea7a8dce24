"""The one process supervisor of the console commands that start children.

``proxns serve`` starts the training workers beside the API it runs itself, ``proxns worker
--gpus``/``--processes`` starts one worker process per GPU or slot. Both use :class:`Supervisor`:
start the children, turn SIGTERM/SIGINT into a stop, stop the children with SIGTERM and a grace
period before killing them, and report a child that died on its own (which stops the rest: a
service whose workers are gone would leave jobs queued forever).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

#: Seconds children get after SIGTERM (a training worker hands its job back) before they are killed.
STOP_GRACE = 60.0
#: The signals that stop a supervisor and, through it, its children.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Exit codes of a child that stopped as asked.
CLEAN_EXITS = (0, -signal.SIGTERM)


class Supervisor:
    """Children of this process, stopped together.

    Typical use (what :func:`supervise` does)::

        sup = Supervisor()
        with sup.handle_signals():
            sup.start([...], name="worker 0")
            sup.watch()
            sup.wait()  # until SIGTERM/SIGINT or a child died on its own
            sup.stop()
        sys.exit(sup.exit_code)
    """

    def __init__(self, grace: float = STOP_GRACE, poll_interval: float = 0.2) -> None:
        self.grace = grace
        self.poll_interval = poll_interval
        self.children: list[tuple[str, subprocess.Popen]] = []
        #: The first child that exited on its own: (name, exit code).
        self.died: tuple[str, int] | None = None
        self.stop_requested = threading.Event()
        self._stopping = threading.Event()
        self._codes: list[int] = []

    # ----------------------------------------------------------------- children

    def start(
        self, cmd: list[str], env: dict[str, str] | None = None, name: str = "child"
    ) -> subprocess.Popen:
        """Start ``cmd`` as a child; ``name`` is how a report of its death calls it."""
        proc = subprocess.Popen(cmd, env=env)
        self.children.append((name, proc))
        return proc

    def watch(self, on_death: Callable[[str, int], None] | None = None) -> threading.Thread:
        """Watch the children from a daemon thread until :meth:`stop`.

        A child that exits while no stop was asked for is reported on stderr, remembered in
        :attr:`died`, ends :meth:`wait`, and ``on_death(name, code)`` is called (``proxns serve``
        sends itself SIGTERM there, so that the API it runs in this process stops too).
        """

        def run() -> None:
            while not self._stopping.is_set() and not self.stop_requested.is_set():
                for name, proc in self.children:
                    code = proc.poll()
                    if code is None or self._stopping.is_set() or self.stop_requested.is_set():
                        continue
                    self.died = (name, code)
                    click.echo(f"{name} exited with code {code}; stopping", err=True)
                    self.stop_requested.set()
                    if on_death is not None:
                        on_death(name, code)
                    return
                time.sleep(self.poll_interval)

        thread = threading.Thread(target=run, name="proxns-supervisor", daemon=True)
        thread.start()
        return thread

    # ----------------------------------------------------------------- signals

    def request_stop(self, *_args: object) -> None:
        """Ask :meth:`wait` to return; the signal handler of :meth:`handle_signals`."""
        self.stop_requested.set()

    @contextmanager
    def handle_signals(self) -> Iterator[None]:
        """While inside, SIGTERM and SIGINT ask for a stop instead of ending the process.

        Must run in the main thread. The handlers before are restored on leaving.
        """
        previous = {sig: signal.signal(sig, self.request_stop) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def wait(self) -> None:
        """Block until a stop is asked for (a signal, :meth:`request_stop`) or a watched child died."""
        while not self.stop_requested.wait(0.5):
            pass

    # ----------------------------------------------------------------- stopping

    def stop(self) -> list[int]:
        """SIGTERM every running child, wait up to :attr:`grace` seconds for all, kill the rest.

        Returns the children's exit codes (negative: the signal that ended it).
        """
        self._stopping.set()
        self.stop_requested.set()
        for _name, proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for _name, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._codes = [proc.returncode for _name, proc in self.children]
        return self._codes

    @property
    def exit_code(self) -> int:
        """After :meth:`stop`: 0 when every child stopped as asked, 1 when one died or failed to stop."""
        if self.died is not None or any(code not in CLEAN_EXITS for code in self._codes):
            return 1
        return 0


def supervise(
    children: list[tuple[list[str], dict[str, str]]],
    grace: float = STOP_GRACE,
    names: list[str] | None = None,
) -> int:
    """Start the child commands, stop them all on SIGTERM/SIGINT or when one dies; the exit code.

    ``names`` (default ``worker process <i>``) name the children in the report of one that died.
    """
    names = names or [f"worker process {i}" for i in range(len(children))]
    sup = Supervisor(grace)
    with sup.handle_signals():
        try:
            for (cmd, env), name in zip(children, names, strict=True):
                sup.start(cmd, env, name=name)
            sup.watch()
            sup.wait()
        finally:
            sup.stop()
    return sup.exit_code
