"""Redis and PostgreSQL servers for the end-to-end tests, from the Debian packages, on free ports.

Each server is started by the test in a temporary directory and stopped with it (through
:class:`process_support.ProcessGroups`); nothing is installed as a system service and no data survives.
``missing_servers()`` says which server programs are not installed, naming the Debian package to install.
"""

from __future__ import annotations

import getpass
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from process_support import ProcessGroups, wait_for

from enlivy_provider.testing import free_port

STARTUP_TIMEOUT_S = 90.0
POSTGRES_ROOT_USER = "postgres"  # the Debian package's system user: PostgreSQL refuses to run as root
DB_USER = "airflow"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``: on PATH, else Debian's versioned directory."""
    initdb = shutil.which("initdb")
    if initdb and Path(initdb).resolve().with_name("postgres").exists():
        return Path(initdb).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    return Path(found[-1]).parent if found else None


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parts[-3]
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def missing_servers() -> list[str]:
    """What is missing to run Redis and PostgreSQL here, each naming its Debian package; empty if nothing."""
    missing = []
    if redis_server_binary() is None:
        missing.append("redis-server (Debian package redis-server)")
    if postgres_bin_dir() is None:
        missing.append("PostgreSQL server: initdb and postgres (Debian package postgresql)")
    elif os.geteuid() == 0 and not _user_exists(POSTGRES_ROOT_USER):
        missing.append(f"the {POSTGRES_ROOT_USER!r} user to run PostgreSQL as (Debian package postgresql)")
    return missing


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(processes: ProcessGroups, workdir: Path) -> str:
    """Start ``redis-server`` on a free 127.0.0.1 port (no persistence); return its ``redis://`` URL."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(workdir), "--daemonize", "no",
    ]  # fmt: skip
    processes.start("redis", argv, dict(os.environ))
    wait_for(
        f"redis-server to answer PING on port {port}",
        lambda: processes.running("redis") and _answers_ping(port),
        timeout_s=STARTUP_TIMEOUT_S,
        details=processes.tail,
    )
    return f"redis://127.0.0.1:{port}/0"


def start_postgres(processes: ProcessGroups) -> str:
    """Start a throwaway PostgreSQL cluster on a free 127.0.0.1 port; return a SQLAlchemy URL (psycopg 3).

    The cluster lives in a fresh directory under the system temp dir (when run as root: owned by the
    ``postgres`` user, which runs the server) and is deleted after the processes stop. Durability is
    switched off: the data is thrown away anyway, and a loaded machine runs the test faster.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("the PostgreSQL server is not installed (Debian package postgresql)")
    user = POSTGRES_ROOT_USER if os.geteuid() == 0 else None
    datadir = Path(tempfile.mkdtemp(prefix="enlivy-e2e-pg-"))
    processes.add_cleanup(lambda: shutil.rmtree(datadir, ignore_errors=True))
    if user:
        shutil.chown(datadir, user=user)
    env = {**os.environ, "LC_ALL": "C.UTF-8", "HOME": str(datadir)}
    init = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(datadir / "data"), "-U", DB_USER, "--auth=trust",
         "-E", "UTF8", "--no-sync"],
        env=env, user=user, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed as {user or getpass.getuser()}:\n{init.stdout}{init.stderr}")
    port = free_port()
    argv = [
        str(bin_dir / "postgres"), "-D", str(datadir / "data"), "-p", str(port), "-h", "127.0.0.1",
        "-k", str(datadir),  # the Unix socket stays in the private directory, not /var/run
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        "-c", "max_connections=200",
    ]  # fmt: skip
    processes.start("postgres", argv, env, user=user, stop_signal=signal.SIGINT)  # SIGINT: fast shutdown
    pg_isready = [
        str(bin_dir / "pg_isready"),
        "-q",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        DB_USER,
        "-d",
        "postgres",
    ]
    wait_for(
        f"PostgreSQL to accept connections on port {port}",
        lambda: (
            processes.running("postgres")
            and subprocess.run(pg_isready, check=False, timeout=30).returncode == 0
        ),
        timeout_s=STARTUP_TIMEOUT_S,
        details=processes.tail,
    )
    return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{port}/postgres"
