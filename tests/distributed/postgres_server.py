"""A throwaway PostgreSQL server for tests and benchmarks: Debian's `postgresql` package
(/usr/lib/postgresql/<version>/bin; `.ci/run` installs it when missing), a cluster made by
initdb in a temporary folder, listening on 127.0.0.1 at a free port, with one password-protected
user. initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` account
(runuser). Anything that stops the server from starting raises: a test using it fails, never skips.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "babysit"
DATABASE = "search"
SERVICE_ACCOUNT = "postgres"  # what Debian's package creates; runs the server when we are root
START_TIMEOUT_S = 60


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL server in /usr/lib/postgresql/<version>/bin: install Debian's "
                           "`postgresql` package (apt-get install postgresql; .ci/run does it)")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """`with PostgresServer() as pg:` pg.url (with the password), pg.url_without_password,
    pg.password, pg.port; the cluster is removed on exit."""

    def __init__(self):
        self.bin = _bin_dir()
        self.password = secrets.token_hex(12)
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="babysit-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"

    def _as_owner(self, *cmd: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", SERVICE_ACCOUNT, "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=START_TIMEOUT_S)

    def _check(self, what: str, done: subprocess.CompletedProcess) -> None:
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL {what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}{log}")

    def start(self) -> "PostgresServer":
        if os.geteuid() == 0:  # the server's files belong to the account that runs it
            account = pwd.getpwnam(SERVICE_ACCOUNT)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        self._check("initdb", self._as_owner(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER,
                                             "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"))
        pwfile.unlink()
        # fsync off: a test's database need not survive a power cut, and commits get cheap
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        self._check("start", self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                                            "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start"))
        import psycopg  # the driver SQLAlchemy uses for postgresql:// URLs (babysit[postgres])

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=self.password,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url_without_password(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def __enter__(self) -> "PostgresServer":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
