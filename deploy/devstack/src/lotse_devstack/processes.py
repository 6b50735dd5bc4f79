"""Child processes that never outlive their parent, and ports that are free or answering."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

_PR_SET_PDEATHSIG = 1


# Ports handed out lately, one empty file each: another process (a parallel test worker) or a
# later call does not choose the same one before its server has bound it.
PORT_RESERVATIONS = Path(tempfile.gettempdir()) / "lotse-ports"
RESERVED_SECONDS = 600.0


def free_port() -> int:
    """A loopback port free now, chosen below the ephemeral range where the system can tell it,
    and not handed out by this function in any process during the last ten minutes.

    A port the kernel hands out for ``bind(0)`` comes from the ephemeral range, which every
    outgoing connection draws from too: between choosing it and the server's bind, one of the
    thousands of connections a test run makes could take it (a fresh-clone run saw SecantusDB
    fail with ``Address already in use``). Below that range only listeners take ports, but
    parallel test workers choose among the same ones: a run saw two platforms start a service on
    one port, hence the reservations.
    """
    low = _ephemeral_low()
    if low is not None and low > 11024:
        chooser = random.SystemRandom()
        for _ in range(200):
            port = chooser.randrange(low - 10000, low)
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            if _reserve(port):
                return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _reserve(port: int) -> bool:
    """Mark ``port`` as handed out, unless a process did so less than ``RESERVED_SECONDS`` ago.
    Where the folder cannot be written (another user's, a read-only temp), the port is taken
    without a reservation, as before there were any."""
    marker = PORT_RESERVATIONS / str(port)
    for _ in range(2):
        try:
            PORT_RESERVATIONS.mkdir(exist_ok=True)
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return True
        except FileExistsError:
            try:
                if time.time() - marker.stat().st_mtime < RESERVED_SECONDS:
                    return False
                marker.unlink()  # an old reservation: its server has long bound the port or gone
            except FileNotFoundError:
                pass
            except OSError:
                return False  # someone else's reservation that this user may not remove
        except OSError:
            return True
    return False


def _ephemeral_low() -> int | None:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now.

    The probe sets SO_REUSEADDR, as the servers do (asyncio, http.server, Tansu): connections a
    stopped server closed itself sit in TIME_WAIT on its port for a minute, which would refuse a
    bare bind but not the servers' own. A socket listening on the port still refuses the probe
    (Linux lets no second socket bind beside a listener unless both set SO_REUSEPORT).
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    # Linux: the kernel signals the child when the parent dies, even by SIGKILL, so a crashed
    # test run or a killed `lotse up` leaves no server behind. SIGKILL, because a parent that
    # died without stopping its children had no graceful path left, and a busy SecantusDB was
    # seen to outlive SIGTERM.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One server process with its log file; stopped with SIGTERM, then SIGKILL.

    With ``echo`` set, every output line also goes to ``echo`` (e.g. prefixed to the terminal).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.echo = echo
        self._process: subprocess.Popen[bytes] | None = None
        self._copier: threading.Thread | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE if self.echo else log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            preexec_fn=_die_with_parent if os.name == "posix" else None,
            # Its own session: Ctrl-C reaches only the supervisor, which stops servers in order.
            start_new_session=True,
        )
        if self.echo is None:
            log.close()
            return
        self._copier = threading.Thread(target=self._copy_output, args=(self._process, log), daemon=True)
        self._copier.start()

    def _copy_output(self, process: subprocess.Popen[bytes], log: BinaryIO) -> None:
        assert process.stdout is not None and self.echo is not None
        with log:
            for raw in process.stdout:
                log.write(raw)
                log.flush()
                self.echo(raw.decode(errors="replace").rstrip("\n"))

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def exit_code(self) -> int | None:
        return self._process.poll() if self._process else None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        """Wait until ``ready()`` holds; fail fast with the server's own words if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.exit_code()
            if code is not None:
                raise RuntimeError(f"{self.name} exited with code {code}:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become ready within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        self._join_copier()

    def _join_copier(self) -> None:
        copier, self._copier = self._copier, None
        if copier is not None:
            copier.join(timeout=5)

    def kill(self) -> None:
        """SIGKILL, as a crash would; for fault tests."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._join_copier()
