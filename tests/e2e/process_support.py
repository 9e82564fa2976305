"""Process management for the end-to-end tests: start servers in their own process groups, stop them all.

Every process a test starts goes through :class:`ProcessGroups`, which gives it a log file and a process
group of its own (``start_new_session``) so that everything it forks dies with it. ``stop_all`` runs in the
tests' ``finally``: a failing test leaves no scheduler, worker, broker or database behind.

:func:`wait_for` is the only way these tests wait: it polls a condition until a deadline and, when the
deadline passes, fails with what it waited for, how long, and the tail of every log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")

STOP_GRACE_S = 20.0  # SIGTERM first: Airflow components and the database shut down cleanly within this


class ProcessGroups:
    """Processes started by one test, each in its own process group, with its output in ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.stop_signals: dict[str, int] = {}
        self.commands: dict[str, tuple[list[str], dict[str, str], str | None]] = {}  # argv, env, user
        self.logs: dict[str, Path] = {}
        self._cleanups: list[Callable[[], object]] = []

    def add_cleanup(self, cleanup: Callable[[], object]) -> None:
        """Run ``cleanup`` after every process has stopped (e.g. delete a database's data directory)."""
        self._cleanups.append(cleanup)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as ``name`` (unique); output to ``<log_dir>/<name>.log``.

        ``user``: run as this user (the caller is root; PostgreSQL refuses to run as root).
        ``stop_signal``: what ``stop_all`` sends first (PostgreSQL shuts down fast on SIGINT).
        """
        if name in self.processes:
            raise ValueError(f"a process named {name!r} was already started")
        self.logs[name] = self.log_dir / f"{name}.log"
        self.commands[name] = (list(argv), env, user)
        self.stop_signals[name] = stop_signal
        return self._spawn(name, "wb")

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start ``name`` again, with the command and environment it was started with, once it has exited
        (e.g. after :meth:`crash`): a new process, its output appended to the same log after a marker line."""
        code = self.exited(name)
        if code is None:
            raise ValueError(f"{name!r} is still running: stop it before starting it again")
        with self.logs[name].open("ab") as out:
            out.write(f"\n===== {name} exited with {code}; started again =====\n".encode())
        return self._spawn(name, "ab")

    def _spawn(self, name: str, log_mode: str) -> subprocess.Popen[bytes]:
        argv, env, user = self.commands[name]
        with self.logs[name].open(log_mode) as out:
            process = subprocess.Popen(
                argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: its children die with it
                user=user,
            )
        self.processes[name] = process
        return process

    def exited(self, name: str) -> int | None:
        """The exit code of ``name``, or ``None`` while it runs."""
        return self.processes[name].poll()

    def running(self, name: str) -> bool:
        """``True`` while ``name`` runs; once it has exited, fail at once with its log (for a ``wait_for``
        check: a server that died while starting is not waited for until the deadline)."""
        code = self.exited(name)
        if code is not None:
            raise AssertionError(f"{name} exited with {code}\n{self.tail(60)}")
        return True

    def crash(self, name: str) -> list[int]:
        """SIGKILL ``name`` with everything it started, as if its machine had died; returns the pids killed.

        Killing the process group is not enough: Airflow's task supervisor puts each task process in a
        group of its own (so that it can kill the task's children), and such a task would live on.
        """
        process = self.processes[name]
        try:
            tree = [
                process.pid,
                *(child.pid for child in psutil.Process(process.pid).children(recursive=True)),
            ]
        except psutil.NoSuchProcess:
            tree = [process.pid]
        groups = set()
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(pid))
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for pid in tree:  # a process that was between groups when they were listed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)
        return tree

    def stop_all(self) -> None:
        """Stop every process started here, newest first (workers before the broker and database)."""
        names = list(reversed(self.processes))
        for name in names:
            _signal_group(self.processes[name], self.stop_signals[name])
        deadline = time.monotonic() + STOP_GRACE_S
        for name in names:
            process = self.processes[name]
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)  # also the group's stragglers after a clean exit
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()
        for cleanup in reversed(self._cleanups):
            cleanup()
        self._cleanups.clear()

    def tail(self, lines: int = 25) -> str:
        """The last ``lines`` lines of every process's log, for failure messages."""
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            parts.append(f"--- {name} ({path})\n" + "\n".join(text))
        return "\n".join(parts)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the group this module created for the process (start_new_session)


@contextlib.contextmanager
def process_groups(log_dir: Path) -> Iterator[ProcessGroups]:
    """A :class:`ProcessGroups` whose processes are stopped on the way out, also when the test failed."""
    groups = ProcessGroups(log_dir)
    try:
        yield groups
    finally:
        groups.stop_all()


def wait_for(
    what: str,
    check: Callable[[], T | None],
    *,
    timeout_s: float,
    details: Callable[[], str] = lambda: "",
    interval_s: float = 0.5,
) -> T:
    """Poll ``check`` until it returns something other than ``None``/``False``; return that.

    After ``timeout_s`` fail with ``what`` was waited for, the time waited and ``details()`` (the state
    seen, the logs' tails). The limits are generous because a loaded 2-core machine runs these tests.
    """
    started = time.monotonic()
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        waited = time.monotonic() - started
        if waited > timeout_s:
            raise AssertionError(f"waited {waited:.0f}s (limit {timeout_s:.0f}s) for {what}\n{details()}")
        time.sleep(interval_s)
