"""The queue of runs /trigger accepted: its name, its message, its poison queue, how often the host delivers a message,
and the client /health counts the poison queue with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from sync_core.errors import SettingsError
from sync_core.rules.days import Day
from sync_core.state.azure_storage import credential

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

# function_app.py keeps its own copy of RUNS_QUEUE: it imports nothing from sync_core when the host loads it.
RUNS_QUEUE = "leadpier-sync-runs"
POISON_QUEUE = f"{RUNS_QUEUE}-poison"  # where the host moves a message after MAX_DEQUEUE_COUNT failed deliveries
MAX_DEQUEUE_COUNT = 3  # host.json extensions.queues.maxDequeueCount


def poison_queue_client(env: Mapping[str, str], *, timeout_s: float, shared_credential: Any = None) -> QueueClient:
    """The poison queue on the host's storage (AzureWebJobsStorage, or its identity-based settings), no retries."""
    from azure.storage.queue import QueueClient

    options: dict[str, Any] = {"connection_timeout": timeout_s, "read_timeout": timeout_s, "retry_total": 0}
    conn = (env.get("AzureWebJobsStorage") or "").strip()
    if conn:
        return QueueClient.from_connection_string(conn, POISON_QUEUE, **options)
    account = env.get("AzureWebJobsStorage__accountName")
    url = env.get("AzureWebJobsStorage__queueServiceUri") or (
        f"https://{account}.queue.core.windows.net" if account else None
    )
    if not url:
        raise SettingsError("AzureWebJobsStorage is missing")
    identity = shared_credential or credential(env.get("AzureWebJobsStorage__clientId"))
    return QueueClient(url.rstrip("/"), POISON_QUEUE, credential=identity, **options)


class RunMessage(BaseModel):
    """One message on the leadpier-sync-runs queue: the run /trigger accepted, for sync_worker to do."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    dates: list[Day] | None = None
    dry_run: bool | None = None
    parent_run_id: str | None = None
    queued_at: AwareDatetime
