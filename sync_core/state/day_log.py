"""The day's log: one append blob per day (a new part past 50,000 blocks), appended at a known position so a retried
append never writes a run's lines twice; read back whole or by its last lines."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

from sync_core.errors import StorageError
from sync_core.state.azure_storage import storage_errors
from sync_core.state.retries import CONFLICT_RETRIES, again_on_storage_error

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, ContainerClient

log = logging.getLogger("sync_core.store")  # the name every log line shows: kept when the module moved

MAX_APPEND_BLOCK = 4 * 1024 * 1024
T = TypeVar("T")


def log_blob_name(day: date, part: int = 0) -> str:
    suffix = f".{part}" if part else ""
    return f"logs/scheduler_{day:%Y%m%d}{suffix}.log"


class DayLogBlobs:
    """The day's log blobs, as part of the state store (which gives it its container and blob clients)."""

    if TYPE_CHECKING:
        container: ContainerClient

        def _blob(self, name: str) -> BlobClient: ...

        def _with_container(self, action: Callable[[], T]) -> T: ...

    def append_log(self, day: date, text: str) -> None:
        """Append a run's lines to the day's append blob, created only if absent; past 50,000 blocks, the next part.

        Each block is appended at the position read just before (`appendpos_condition`): when the SDK retries an
        append whose answer was lost, the retry is refused instead of writing the lines twice, and the block that
        landed is recognised by reading it back.
        """
        data = text.encode("utf-8")
        if data:
            progress = _AppendProgress(_chunks(data, MAX_APPEND_BLOCK))
            again_on_storage_error(lambda: self._append(day, progress))

    def _append(self, day: date, progress: _AppendProgress) -> None:
        """Append what is left of `progress`; kept across tries, so a block that landed is never appended again."""
        from azure.core.exceptions import HttpResponseError

        with storage_errors("appending to the day's log"):
            conflicts = 0
            while progress.chunks:
                blob = self._blob(log_blob_name(day, progress.part))
                if progress.attempted_at is not None:
                    # The last try may have landed though it failed for us (its answer was lost): look first.
                    if self._block_landed(blob, progress.attempted_at, progress.chunks[0]):
                        log.info("A retried append of the day's log had already landed; not writing it twice")
                        progress.landed()
                        continue
                    progress.attempted_at = None
                if progress.position is None:
                    progress.position = self._log_size(blob)
                try:
                    progress.attempted_at = progress.position
                    blob.append_block(progress.chunks[0], appendpos_condition=progress.position)
                    progress.landed()
                except HttpResponseError as exc:
                    code = getattr(exc, "error_code", None)
                    if code == "BlockCountExceedsLimit":
                        progress.part, progress.position, progress.attempted_at = progress.part + 1, None, None
                        continue
                    if code != "AppendPositionConditionNotMet" and exc.status_code != 412:
                        raise
                    if progress.attempted_at is not None and not self._block_landed(
                        blob, progress.attempted_at, progress.chunks[0]
                    ):
                        conflicts += 1  # another writer appended meanwhile: read the new end and try again
                        if conflicts > CONFLICT_RETRIES:
                            raise
                        progress.position = progress.attempted_at = None
                        continue
                    log.info("A retried append of the day's log had already landed; not writing it twice")
                    progress.landed()

    def _log_size(self, blob: BlobClient) -> int:
        """The append blob's current length, creating it first if absent (never wiping a concurrent creator's)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        for _ in range(3):
            try:
                return int(blob.get_blob_properties().size)
            except ResourceNotFoundError:
                try:
                    # If-None-Match: * : a concurrent creator's blob (and its lines) is never wiped.
                    self._with_container(
                        lambda: blob.create_append_blob(
                            match_condition=MatchConditions.IfMissing, content_settings=_text_content()
                        )
                    )
                except (ResourceExistsError, ResourceModifiedError):
                    pass
        raise StorageError("the day's log could not be created")

    def _block_landed(self, blob: BlobClient, position: int, block: bytes) -> bool:
        """Whether `block` sits at `position` of the blob: our append was applied though its answer was lost."""
        from azure.core.exceptions import HttpResponseError

        try:
            found = blob.download_blob(offset=position, length=len(block)).readall()
        except HttpResponseError as exc:
            if exc.status_code in (404, 416):  # no blob, or nothing at that position
                return False
            raise
        return found == block

    def log_parts(self, day: date) -> list[tuple[str, int]]:
        """(blob name, size) of each existing part of the day's log, in order."""
        from azure.core.exceptions import ResourceNotFoundError

        prefix = f"logs/scheduler_{day:%Y%m%d}"
        with storage_errors("listing the day's log"):
            try:
                found = {b.name: int(b.size) for b in self.container.list_blobs(name_starts_with=prefix)}
            except ResourceNotFoundError:
                return []
        parts = []
        for part in range(len(found) + 1):
            name = log_blob_name(day, part)
            if name in found:
                parts.append((name, found[name]))
        return parts

    def read_log_tail(self, day: date, lines: int, chunk: int = 256 * 1024) -> tuple[str | None, list[str]]:
        """The last `lines` lines of the day's log with ranged reads from the end; (None, []) when there is none."""
        parts = self.log_parts(day)
        if not parts:
            return None, []
        collected = b""
        with storage_errors("reading the day's log"):
            for name, size in reversed(parts):
                end = size
                while end > 0 and collected.count(b"\n") <= lines:
                    start = max(0, end - chunk)
                    piece = self._blob(name).download_blob(offset=start, length=end - start).readall()
                    collected = piece + collected
                    end = start
                if collected.count(b"\n") > lines:
                    break
        text = collected.decode("utf-8", errors="replace")
        return parts[-1][0], text.splitlines()[-lines:]

    def read_log(self, day: date) -> bytes | None:
        """The whole day's log (all parts), or None when there is none."""
        parts = self.log_parts(day)
        if not parts:
            return None
        with storage_errors("reading the day's log"):
            return b"".join(self._blob(name).download_blob().readall() for name, _ in parts)


@dataclass
class _AppendProgress:
    """A day's log append across tries: the blocks left, the part, where the next block goes, an unconfirmed try."""

    chunks: list[bytes]
    part: int = 0
    position: int | None = None
    attempted_at: int | None = None

    def landed(self) -> None:
        assert self.position is not None or self.attempted_at is not None
        self.position = (self.attempted_at if self.attempted_at is not None else self.position or 0) + len(
            self.chunks.pop(0)
        )
        self.attempted_at = None


def _chunks(data: bytes, size: int) -> list[bytes]:
    """Split at line ends where possible, so no block boundary cuts a line in two."""
    chunks = []
    while len(data) > size:
        cut = data.rfind(b"\n", 0, size) + 1 or size
        chunks.append(data[:cut])
        data = data[cut:]
    if data:
        chunks.append(data)
    return chunks


def _text_content() -> Any:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="text/plain; charset=utf-8")
