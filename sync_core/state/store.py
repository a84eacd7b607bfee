"""The state store: every blob this app keeps in its one container (session, stats, runs, the lock; the day's log
from `day_log`)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from sync_core.errors import ConcurrentUpdate, StorageError
from sync_core.settings import ConnectionStringTarget, StorageTarget
from sync_core.state.azure_storage import credential, storage_errors
from sync_core.state.day_log import DayLogBlobs
from sync_core.state.lock import RunLock, lock_is_held
from sync_core.state.records import RUN_ID_PATTERN, JobStats, LeadPierSession, RunRecord, is_run_id
from sync_core.state.retries import (
    CONFLICT_BACKOFF_S,
    CONFLICT_RETRIES,
    TRANSIENT_BACKOFF_S,
    TRANSIENT_RETRIES,
    again_on_storage_error,
)

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, ContainerClient

log = logging.getLogger("sync_core.store")  # the name every log line shows: kept when the module moved
# The SDK logs every request at INFO; in Application Insights that would drown the run's own lines.
logging.getLogger("azure").setLevel(logging.WARNING)

SESSION_BLOB = "source.json"
STATS_BLOB = "job_stats.json"
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def run_blob_name(run_id: str) -> str:
    match = RUN_ID_PATTERN.fullmatch(run_id)
    if not match:
        raise ValueError(f"{run_id!r} is not a run id")
    return f"runs/{match['day']}/{run_id}.json"


class StateStore(DayLogBlobs):
    """One class over one container, with methods named for what the app needs."""

    def __init__(
        self,
        target: StorageTarget,
        *,
        timeout_s: float = 20,
        retries: int = 2,
        retry_backoff_s: float = 1.0,
        shared_credential: Any = None,
    ) -> None:
        """`shared_credential`: the identity's credential for an account URL, built once by the caller and shared by
        its stores (it caches tokens); by default the store builds its own."""
        # The storage SDK is imported here, on first use: importing function_app must stay cheap.
        from azure.storage.blob import BlobServiceClient, LinearRetry

        self.requests = 0
        self._count_lock = threading.Lock()
        options: dict[str, Any] = {
            "connection_timeout": min(5, timeout_s),
            "read_timeout": timeout_s,
            # The SDK's default waits 15 s and more between tries; a run has a 10-minute slot.
            # The SDK sleeps fractions of a second too, though its annotations say int (hence the two ignores).
            "retry_policy": LinearRetry(
                backoff=retry_backoff_s,  # type: ignore[arg-type]
                random_jitter_range=retry_backoff_s,  # type: ignore[arg-type]
                retry_total=retries,
            ),
            "raw_request_hook": self._count_request,  # runs once per request sent, retries included
        }
        if isinstance(target, ConnectionStringTarget):
            service = BlobServiceClient.from_connection_string(target.connection_string.get_secret_value(), **options)
        else:
            identity = shared_credential or credential(target.client_id)
            service = BlobServiceClient(target.account_url, credential=identity, **options)
        self.target = target
        self._service = service
        self.container: ContainerClient = service.get_container_client(target.container)
        self._container_ready = False

    def close(self) -> None:
        """Close the connection pool (the store is built once per process and closed when the process ends)."""
        self._service.close()

    def _count_request(self, _request: Any) -> None:
        with self._count_lock:
            self.requests += 1

    # -- plumbing --------------------------------------------------------------------------------

    def ensure_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        if self._container_ready:
            return
        try:
            self.container.create_container()
            log.info("Created the state container %s", self.target.container)
        except ResourceExistsError:
            pass
        self._container_ready = True

    def _blob(self, name: str) -> BlobClient:
        return self.container.get_blob_client(name)

    def _with_container(self, action: Callable[[], T]) -> T:
        """Run an action, creating the container once if it turns out to be missing."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return action()
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) != "ContainerNotFound":
                raise
            self._container_ready = False
            self.ensure_container()
            return action()

    def _read_json(self, name: str, model: type[M]) -> tuple[M | None, str | None]:
        """The document and its ETag; a missing blob is (None, None); a corrupt one is (None, its ETag)."""
        from azure.core.exceptions import ResourceNotFoundError

        with storage_errors(f"reading {name}"):
            try:
                downloader = self._blob(name).download_blob()
                content = downloader.readall()
                etag = downloader.properties.etag
            except ResourceNotFoundError:
                return None, None
        try:
            return model.model_validate_json(content), etag
        except ValidationError:
            log.warning("%s is corrupt or unreadable; treating it as empty and rewriting it whole", name)
            return None, etag

    def _write_json(
        self, name: str, document: BaseModel, etag: str | None, *, create_only: bool = False, compact: bool = False
    ) -> str:
        """Write conditionally: on the ETag read, or only if absent; ConcurrentUpdate when another writer won.
        `compact`: no indentation and no default values (a document read in bulk, not by people)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        if compact:
            data = document.model_dump_json(exclude_defaults=True).encode()
        else:
            data = document.model_dump_json(indent=1).encode()
        conditions: dict[str, Any] = {}
        if etag is not None:
            conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        elif create_only:
            conditions = {"match_condition": MatchConditions.IfMissing}

        def upload() -> str:
            props = self._blob(name).upload_blob(data, overwrite=True, content_settings=_json_content(), **conditions)
            return str(props["etag"])

        with storage_errors(f"writing {name}"):
            try:
                return self._with_container(upload)
            except (ResourceModifiedError, ResourceExistsError):
                raise ConcurrentUpdate(f"{name} was changed by another writer") from None

    # -- the LeadPier session ----------------------------------------------------------------------

    def load_session(self) -> tuple[LeadPierSession | None, str | None]:
        return self._read_json(SESSION_BLOB, LeadPierSession)

    def save_session(self, session: LeadPierSession, etag: str | None) -> str:
        return self._write_json(SESSION_BLOB, session, etag, create_only=etag is None)

    def drop_session(self) -> None:
        """Forget the LeadPier session: the next run logs in. Nothing to drop is not an error."""
        from azure.core.exceptions import ResourceNotFoundError

        with storage_errors("dropping the LeadPier session"), contextlib.suppress(ResourceNotFoundError):
            self._blob(SESSION_BLOB).delete_blob()

    # -- job statistics -----------------------------------------------------------------------------

    def load_job_stats(self) -> tuple[JobStats, str | None]:
        stats, etag = self._read_json(STATS_BLOB, JobStats)
        return stats or JobStats(), etag

    def update_job_stats(
        self, change: Callable[[JobStats], None], *, read: tuple[JobStats, str | None] | None = None
    ) -> JobStats:
        """Read-modify-write on the ETag read, again on conflict, so no writer loses another's update."""
        stats, etag = read if read is not None else self.load_job_stats()
        transient_left = TRANSIENT_RETRIES
        for attempt in range(CONFLICT_RETRIES):
            stats = stats.model_copy(deep=True)
            change(stats)
            try:
                self._write_json(STATS_BLOB, stats, etag, create_only=etag is None)
                return stats
            except ConcurrentUpdate:
                # Also what a retried write meets when its first try landed but the answer was lost: `change`
                # must see on the new document that its work is done (JobStats.count is idempotent per run id).
                log.info("job_stats.json changed under us; reading it again")
                time.sleep(random.uniform(0, min(1.0, CONFLICT_BACKOFF_S * 2**attempt)))
            except StorageError:
                # The SDK's own retries are spent; the write is conditional and idempotent, so try once more.
                if not transient_left:
                    raise
                transient_left -= 1
                log.warning("Writing job_stats.json failed; reading it again and retrying")
                time.sleep(TRANSIENT_BACKOFF_S)
            stats, etag = self._reread_job_stats()
        raise ConcurrentUpdate(f"{STATS_BLOB} kept changing; gave up after {CONFLICT_RETRIES} tries")

    def _reread_job_stats(self) -> tuple[JobStats, str | None]:
        for _ in range(TRANSIENT_RETRIES):
            try:
                return self.load_job_stats()
            except StorageError:
                time.sleep(TRANSIENT_BACKOFF_S)
        return self.load_job_stats()

    # -- run records ---------------------------------------------------------------------------------

    def save_run(self, record: RunRecord) -> None:
        again_on_storage_error(lambda: self._write_json(run_blob_name(record.run_id), record, None))

    def load_run(self, run_id: str) -> RunRecord | None:
        if not is_run_id(run_id):
            return None
        record, _ = self._read_json(run_blob_name(run_id), RunRecord)
        return record

    def list_runs(
        self,
        limit: int,
        *,
        include_children: bool = True,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[RunRecord]:
        """The newest `limit` runs, newest first: day folders newest first, run ids sort by start time.

        `include_children=False` leaves out a backfill's per-day runs (ids ending in .NN): the parent stands for them.
        `since` (inclusive) and `until` (exclusive) bound the runs' ids, that is their start (or queueing) time.
        """
        run_ids = list(
            itertools.islice(self.iter_run_ids(include_children=include_children, since=since, until=until), limit)
        )
        return self.load_runs(run_ids)

    def load_runs(self, run_ids: list[str]) -> list[RunRecord]:
        """The records of these runs, read concurrently, in the same order; a run gone meanwhile is left out."""
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="runs-read") as pool:
            return [record for record in pool.map(self.load_run, run_ids) if record is not None]

    def iter_run_ids(
        self, *, include_children: bool = True, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[str]:
        """Run ids newest first, from name listings only, one day folder at a time as the caller asks for more."""
        from azure.core.exceptions import ResourceNotFoundError

        # A run id starts with its UTC time in the same fixed-width form, so text order is time order.
        low = _run_id_prefix(since) if since else ""
        high = _run_id_prefix(until) if until else "~"
        with storage_errors("listing runs"):
            try:
                days = sorted(
                    (p.name for p in self.container.walk_blobs(name_starts_with="runs/", delimiter="/")),
                    reverse=True,
                )
            except ResourceNotFoundError:
                return
        for day in days:
            folder = day.removeprefix("runs/").rstrip("/")
            if folder < low[:8] or folder > high[:8]:
                continue
            with storage_errors("listing runs"):
                try:
                    names = [b.name for b in self.container.list_blobs(name_starts_with=day)]
                except ResourceNotFoundError:
                    return
            for name in sorted(names, reverse=True):
                run_id = name.rsplit("/", 1)[-1].removesuffix(".json")
                if not is_run_id(run_id) or not low <= run_id < high:
                    continue
                if include_children or not _is_child_run_blob(name):
                    yield run_id

    def run_ids_on(self, days: Iterable[date]) -> list[str]:
        """The ids of every run recorded on those UTC days, from name listings only (one request per day and
        5,000 runs), oldest first."""
        from azure.core.exceptions import ResourceNotFoundError

        run_ids: list[str] = []
        with storage_errors("listing runs"):
            try:
                for day in days:
                    for name in self.container.list_blob_names(name_starts_with=f"runs/{day:%Y%m%d}/"):
                        run_id = name.rsplit("/", 1)[-1].removesuffix(".json")
                        if is_run_id(run_id):
                            run_ids.append(run_id)
            except ResourceNotFoundError:
                return []
        return sorted(run_ids)

    # -- documents derived from the run records (the per-day summaries) --------------------------------------

    def read_document(self, name: str, model: type[M]) -> tuple[M | None, str | None]:
        """A derived document and its ETag; (None, None) when absent, (None, ETag) when unreadable."""
        return self._read_json(name, model)

    def write_document(self, name: str, document: BaseModel, etag: str | None) -> str:
        """Written compact, on the ETag read (or only if absent): ConcurrentUpdate when another writer won."""
        return self._write_json(name, document, etag, create_only=etag is None, compact=True)

    # -- the lock ----------------------------------------------------------------------------------------

    def lock(self) -> RunLock:
        """The run lock (not yet taken): `acquire`/`try_acquire`, `check` before each write, `release` at the end."""
        return RunLock(self.container)

    def lock_is_held(self) -> bool:
        """Whether a run holds the lock right now (a crashed run's lease lapses within 30 s)."""
        return lock_is_held(self.container)


def _run_id_prefix(moment: datetime) -> str:
    """The start of the ids of runs that began at `moment`: ids at or after it sort at or after this text."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y%m%dT%H%M%S}{utc.microsecond // 1000:03d}Z"


def _is_child_run_blob(name: str) -> bool:
    """runs/YYYYMMDD/<parent id>.NN.json: one day of a backfill."""
    match = RUN_ID_PATTERN.fullmatch(name.rsplit("/", 1)[-1].removesuffix(".json"))
    return bool(match) and name.removesuffix(".json")[-3] == "."


def _json_content() -> Any:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="application/json")
