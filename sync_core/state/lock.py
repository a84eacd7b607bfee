"""The run lock: a 30 s lease on one blob, renewed by a thread, so only one run writes at a time."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from sync_core.errors import LockLost, StorageError
from sync_core.state.azure_storage import storage_errors

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, ContainerClient

log = logging.getLogger("sync_core.lock")  # the name every log line shows: kept when the module moved

LOCK_BLOB = "locks/sync.lock"
LEASE_SECONDS = 30
RENEW_EVERY_SECONDS = 10
# Tries of an acquire or a release once the SDK's own tries are spent (a busy account), RETRY_PAUSE_S apart.
ACQUIRE_TRIES = 3
RELEASE_TRIES = 3
RETRY_PAUSE_S = 0.5


class RunLock:
    """The lease on the lock blob: 30 s, renewed every 10 s by a thread, released at the end.

    `container` is the state container: the lock blob (and the container) are created on first use.
    The renewal thread runs in a copy of the context that took the lease: the run's log, span and invocation.
    """

    def __init__(
        self,
        container: ContainerClient,
        *,
        blob_name: str = LOCK_BLOB,
    ) -> None:
        self._container = container
        self._blob: BlobClient = container.get_blob_client(blob_name)
        self._lease: Any = None
        self._lost: str | None = None
        self._last_renewed = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """Take the lease if free; False if another run holds it."""
        # One proposed lease id for every try of this acquire: when a try's answer was lost (the lease granted),
        # the next try is granted the same lease again instead of meeting 409 from ourselves.
        lease_id = str(uuid.uuid4())
        for attempt in range(ACQUIRE_TRIES):
            try:
                taken = self._try_acquire(lease_id)
                break
            except StorageError as exc:
                if attempt + 1 == ACQUIRE_TRIES:
                    self._give_back(lease_id)
                    raise
                log.warning("Taking the run lock failed (%s); trying again", exc)
                time.sleep(RETRY_PAUSE_S)
        if not taken:
            return False
        self._last_renewed = time.monotonic()
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._renew,), name="sync-lock-renewal", daemon=True
        )
        self._thread.start()
        return True

    def _try_acquire(self, lease_id: str) -> bool:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

        with storage_errors("taking the lock"):
            for _ in range(2):
                try:
                    self._lease = self._blob.acquire_lease(lease_duration=LEASE_SECONDS, lease_id=lease_id)
                    return True
                except ResourceNotFoundError:
                    try:
                        self._create_blob()
                    except (ResourceExistsError, HttpResponseError):
                        pass  # created (and perhaps leased) by another run meanwhile
                except HttpResponseError as exc:
                    if exc.status_code == 409:
                        return False
                    raise
        return False

    def _give_back(self, lease_id: str) -> None:
        """After an acquire that failed for us: a try may have been granted though its answer was lost; release
        that lease (by the id we proposed) so it does not keep the next runs out until it lapses."""
        from azure.storage.blob import BlobLeaseClient

        try:
            BlobLeaseClient(self._blob, lease_id).release()
        except Exception as exc:  # nothing was granted, or storage is still failing: the lease lapses anyway
            log.info("No lease of this run to give back (%s)", type(exc).__name__)

    def acquire(self, wait_s: float, poll_s: float = 2.0) -> bool:
        """Wait up to wait_s for the lease (a queued backfill waits out a running timer run)."""
        end = time.monotonic() + wait_s
        while True:
            if self.try_acquire():
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(min(poll_s, max(0.0, end - time.monotonic())))

    def check(self) -> None:
        """Raise LockLost once the lease may have lapsed (or was taken): the run must not write any further.

        Judged by the time since the last renewal, not by the renewal thread, which may be stuck in a slow call.
        """
        if not self._lost and time.monotonic() - self._last_renewed >= LEASE_SECONDS - RENEW_EVERY_SECONDS:
            self._lost = f"the lock's lease was not renewed for {LEASE_SECONDS - RENEW_EVERY_SECONDS} s"
            log.error("Lost the run lock: %s; the run stops before its next write", self._lost)
        if self._lost:
            raise LockLost(f"the run stopped: {self._lost}")

    def release(self) -> None:
        """Stop renewing and give the lease back; never raises (a lease not given back lapses within 30 s)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._lease is not None and not self._lost:
            for attempt in range(RELEASE_TRIES):
                try:
                    self._lease.release()
                    break
                except Exception as exc:
                    if self._released_already():
                        break
                    if attempt + 1 == RELEASE_TRIES:
                        log.warning(
                            "Releasing the run lock failed (%s); it lapses within %d s",
                            type(exc).__name__,
                            LEASE_SECONDS,
                        )
                    else:
                        time.sleep(RETRY_PAUSE_S)
        self._lease = None

    def _create_blob(self) -> None:
        """The empty lock blob, creating the container first when it is missing too."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        try:
            self._blob.upload_blob(b"", overwrite=False)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) != "ContainerNotFound":
                raise
            try:
                self._container.create_container()
                log.info("Created the state container %s", self._container.container_name)
            except ResourceExistsError:
                pass
            self._blob.upload_blob(b"", overwrite=False)

    def _renew(self) -> None:
        from azure.core.exceptions import HttpResponseError

        while not self._stop.wait(RENEW_EVERY_SECONDS):
            try:
                self._lease.renew()
                self._last_renewed = time.monotonic()
            except HttpResponseError as exc:
                if exc.status_code in (409, 412):  # the lease was broken or taken: it is gone for good
                    self._lost = f"the lock's lease was lost ({getattr(exc, 'error_code', None) or exc.status_code})"
                    log.error("Lost the run lock: %s; the run stops before its next write", self._lost)
                    return
                log.warning("Renewing the run lock failed (HTTP %s); trying again", exc.status_code)
            except Exception as exc:
                log.warning("Renewing the run lock failed (%s); trying again", type(exc).__name__)

    def _released_already(self) -> bool:
        """After a failed release: whether the lease is free anyway (a retried release whose first answer was lost)."""
        try:
            props = self._blob.get_blob_properties()
        except Exception:
            return False
        return bool(props.lease.state != "leased")


def lock_is_held(container: ContainerClient, blob_name: str = LOCK_BLOB) -> bool:
    """Whether a run holds the lease right now (a crashed run's lease lapses within 30 s); StorageError if unknown."""
    from azure.core.exceptions import ResourceNotFoundError

    with storage_errors("checking the lock"):
        try:
            props = container.get_blob_client(blob_name).get_blob_properties()
        except ResourceNotFoundError:
            return False
    return bool(props.lease.state == "leased" and props.lease.status == "locked")
