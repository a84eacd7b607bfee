"""Running the Azurite storage emulator as a child process on free loopback ports."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# Azurite's fixed development account; the key is public and documented by Microsoft.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class AzuriteError(RuntimeError):
    """Azurite is missing, would not start, or died."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _azurite_answers(port: int, https: bool = False) -> bool:
    """Whether Azurite answers HTTP on `port`; stricter than a TCP connect, which anyone holding
    the port would accept (a port picked by free_port() can be taken by another process meanwhile)."""
    connection: http.client.HTTPConnection
    if https:
        # Only asks whether Azurite listens; the clients under test verify the certificate themselves.
        connection = http.client.HTTPSConnection(HOST, port, timeout=1, context=ssl._create_unverified_context())
    else:
        connection = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        connection.request("GET", f"/{ACCOUNT_NAME}?comp=list")
        response = connection.getresponse()
        response.read()
        return response.getheader("Server", "").startswith("Azurite")
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


class Azurite:
    """One Azurite process (blob, queue and table services) persisting to `workdir`.

    The ports are fixed at construction, so `stop()` followed by `start()` brings the
    same endpoints back with the same data: that is how tests simulate a storage outage.

    With `tls` (a certificate and key, see `sandbox.identity.make_certificate`) it serves HTTPS and
    accepts only bearer tokens (`--oauth basic`: issuer, audience and expiry checked), as an
    account with shared keys off does; the connection string then means nothing to it.
    """

    def __init__(
        self,
        workdir: Path,
        blob_port: int | None = None,
        queue_port: int | None = None,
        table_port: int | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.tls = tls
        self.blob_port = blob_port if blob_port is not None else free_port()
        self.queue_port = queue_port if queue_port is not None else free_port()
        self.table_port = table_port if table_port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        # Ends the process at interpreter exit, or when this object is collected without stop().
        self._reaper: weakref.finalize[..., Azurite] | None = None

    @property
    def log_path(self) -> Path:
        """Azurite's stdout and stderr: a file, since a pipe nobody reads would block a chatty Azurite."""
        return self.workdir / "azurite-output.log"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def blob_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.blob_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def table_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};"
            f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
            f"QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        tls = [] if self.tls is None else ["--cert", str(self.tls[0]), "--key", str(self.tls[1]), "--oauth", "basic"]
        return [
            str(AZURITE_BIN),
            "--silent",
            # The Python SDK is often newer than the emulator; without this every call fails
            # with "The API version ... is not supported by Azurite".
            "--skipApiVersionCheck",
            "--loose",
            # Tests must not phone home.
            "--disableTelemetry",
            "--location", str(self.workdir),
            "--blobHost", HOST, "--blobPort", str(self.blob_port),
            "--queueHost", HOST, "--queuePort", str(self.queue_port),
            "--tableHost", HOST, "--tablePort", str(self.table_port),
            *tls,
        ]  # fmt: skip

    def start(self) -> Azurite:
        """Spawn Azurite and return once its blob and queue services answer."""
        if self.running:
            return self
        if not AZURITE_BIN.exists():
            raise AzuriteError(f"Azurite is not installed ({AZURITE_BIN} is missing): run `npm ci` in {REPO_ROOT}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open as long as the process runs
        self._process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own process group: a Ctrl-C in the terminal does not kill it mid-save, and stop()
            # signals node and anything it spawns at once.
            start_new_session=True,
            # Its own group also hides it from a kill of ours: the parent-death signal ends it when we die, however.
            preexec_fn=_die_with_parent,
        )
        self._reaper = weakref.finalize(self, _end_process, self._process, self._log)
        try:
            self._wait_until_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = [self.blob_port, self.queue_port]
        while pending:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise AzuriteError(f"Azurite exited with code {code} while starting:\n{self.output()}")
            pending = [port for port in pending if not _azurite_answers(port, https=self.tls is not None)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise AzuriteError(
                    f"Azurite did not listen on port(s) {pending} within {START_TIMEOUT_S:.0f} s:\n{self.output()}"
                )
            time.sleep(0.05)

    def output(self, limit: int = 4000) -> str:
        """The end of what Azurite printed, for error messages."""
        try:
            text = self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return "(no output)"
        return text[-limit:] or "(no output)"

    def stop(self) -> None:
        """Stop Azurite: SIGTERM first, so it saves its metadata, then SIGKILL if it hangs."""
        self._end(graceful=True)

    def kill(self) -> None:
        """Crash Azurite (SIGKILL): metadata it has not saved yet is lost, as after a real crash."""
        self._end(graceful=False)

    def _end(self, *, graceful: bool) -> None:
        if self._process is None or self._log is None or self._reaper is None:
            return
        self._reaper.detach()
        _end_process(self._process, self._log, graceful=graceful)
        self._process = self._log = self._reaper = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Azurite(blob={self.blob_port}, queue={self.queue_port}, table={self.table_port}, {state})"


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the thread that started it ends (a parent killed with SIGKILL
    included), so no Azurite outlives the tests or the sandbox. Linux only; elsewhere stop() and the
    finalizer are all there is."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    # The parent may have died between fork and prctl: then the signal would never come.
    if os.getppid() == 1:
        os._exit(1)


def _end_process(process: subprocess.Popen[bytes], log: IO[bytes], graceful: bool = True) -> None:
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM if graceful else signal.SIGKILL)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
    log.close()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
