"""How the store tries a write again: an ETag conflict after a jittered wait, a transient failure once the SDK's own
retries are spent (idempotent writes only)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sync_core.errors import ConcurrentUpdate, StorageError

log = logging.getLogger("sync_core.store")  # the name every log line shows: kept when the module moved

CONFLICT_RETRIES = 10
CONFLICT_BACKOFF_S = 0.02  # doubled per conflict, jittered: writers that collided do not collide again in step
TRANSIENT_RETRIES = 2  # app-level tries of an idempotent end-of-run write once the SDK's own retries are spent
TRANSIENT_BACKOFF_S = 0.5


def again_on_storage_error(write: Callable[[], Any]) -> Any:
    """An idempotent write, tried again a little later once the SDK's own retries are spent (a busy account)."""
    for _ in range(TRANSIENT_RETRIES):
        try:
            return write()
        except ConcurrentUpdate:
            raise
        except StorageError as exc:
            log.warning("A storage write failed (%s); trying it again", exc)
            time.sleep(TRANSIENT_BACKOFF_S)
    return write()
