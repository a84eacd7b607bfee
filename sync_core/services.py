"""The clients a worker process builds once and reuses across invocations: settings, state stores, the upstream session.

The Azure SDK's clients hold connection pools (and, with a managed identity, a credential that caches its tokens);
building them per invocation costs a TLS handshake, and a token request, every time. So the functions ask
`services()` for them: it builds them on first use, hands the same ones back while the settings stay the same, and
builds new ones only when a setting changes (the old ones are left to whatever run still holds them; in Azure a
changed app setting restarts the worker anyway). Settings that are invalid are never cached: the next
call reads them again, so a fixed app setting takes effect without a restart.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

import requests

from sync_core.errors import SettingsError
from sync_core.settings import AccountUrlTarget, Settings, load_settings, read_environment
from sync_core.state.azure_storage import credential
from sync_core.state.queues import poison_queue_client
from sync_core.state.records import utcnow
from sync_core.state.store import StateStore
from sync_core.upstream.http import BACKOFF_INITIAL_S, BACKOFF_MAX_S, new_session

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

# An HTTP route's patience with storage: a short timeout and one retry, so a stalled account answers 503 well within
# 10 s. A run keeps the store's longer defaults, bounded by its deadline.
ROUTE_STORAGE_TIMEOUT_S = 3.0
ROUTE_STORAGE_RETRIES = 1
BACKFILL_LOCK_WAIT_S = 120.0  # a queued backfill waits out a running timer run rather than being skipped
# /health's probes: one try each, so the whole check answers within 10 s whatever storage does.
PROBE_TIMEOUT_S = 5.0

T = TypeVar("T")

# Settings that decide what the services are; a change in any of them builds new ones.
_SETTING_PREFIXES = ("AzureWebJobsStorage", "SYNC_", "LEADPIER_", "LE_", "HTTP_")


@dataclass(frozen=True)
class Timing:
    """A run's clock (its start, end, report days and repairs) and its waits: between tries of an upstream call, and
    for the lock when a queued backfill day meets it. The lease, the run's deadline and the LeadPier token's
    lifetime keep real time: the storage account and LeadPier judge them by theirs."""

    clock: Callable[[], datetime] = utcnow
    backoff_initial_s: float = BACKOFF_INITIAL_S
    backoff_max_s: float = BACKOFF_MAX_S
    backfill_lock_wait_s: float = BACKFILL_LOCK_WAIT_S


_timing = Timing()


def timing() -> Timing:
    """The timing this process's runs are built with."""
    return _timing


@contextlib.contextmanager
def use_timing(chosen: Timing) -> Iterator[Timing]:
    """This process's runs with another clock or other waits while the block lasts (tests, the benchmark)."""
    global _timing
    before = _timing
    reset()
    _timing = chosen
    try:
        yield chosen
    finally:
        reset()
        _timing = before


class OnFirstUse(Generic[T]):
    """A client built the first time it is asked for, once, under a lock: /health's poison-queue client is never
    built (nor the queue SDK imported) by a worker that only runs."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build: Callable[[], T] | None = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._build is not None:
                self._value, self._build = self._build(), None
            return self._value  # type: ignore[return-value]  # built above

    def built(self) -> T | None:
        """The client if it was built, without building it."""
        with self._lock:
            return self._value


@dataclass(frozen=True)
class Services:
    """What runs and routes share within one worker process."""

    settings: Settings
    store: StateStore  # for runs: the store's default timeouts and retries
    route_store: StateStore  # for HTTP routes: quick to give up
    probe_store: StateStore  # for /health: one try
    poison_queues: OnFirstUse[QueueClient | None]  # see poison_queue
    upstream: requests.Session  # LeadPier and LE calls, pooled across runs
    timing: Timing = field(default_factory=Timing)

    @property
    def poison_queue(self) -> QueueClient | None:
        """/health's count of abandoned runs; None when the host's storage is not set."""
        return self.poison_queues.get()

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        env: Mapping[str, str] | None = None,
        store: StateStore | None = None,
        timing: Timing | None = None,
    ) -> Services:
        """New services for these settings (`env`: where the host's own storage is, for the poison queue);
        `store`: a run store built by the caller (the benchmark, the fault tests); `timing`: by default the
        process's."""
        target = settings.storage
        # One credential for every client of an identity: it caches its tokens.
        identity = credential(target.client_id) if isinstance(target, AccountUrlTarget) else None
        env = env or {}
        same_identity = (
            isinstance(target, AccountUrlTarget)
            and identity is not None
            and target.client_id == env.get("AzureWebJobsStorage__clientId")
        )

        def poison() -> QueueClient | None:
            try:
                return poison_queue_client(
                    env, timeout_s=PROBE_TIMEOUT_S, shared_credential=identity if same_identity else None
                )
            except SettingsError:
                return None

        return cls(
            settings=settings,
            store=store or StateStore(target, shared_credential=identity),
            route_store=StateStore(
                target, timeout_s=ROUTE_STORAGE_TIMEOUT_S, retries=ROUTE_STORAGE_RETRIES, shared_credential=identity
            ),
            probe_store=StateStore(target, timeout_s=PROBE_TIMEOUT_S, retries=0, shared_credential=identity),
            poison_queues=OnFirstUse(poison),
            upstream=new_session(settings.leadpier_concurrency),
            timing=timing or _timing,
        )

    def close(self) -> None:
        for store in (self.store, self.route_store, self.probe_store):
            store.close()
        poison = self.poison_queues.built()
        if poison is not None:
            poison.close()
        self.upstream.close()


_lock = threading.Lock()
_current: tuple[tuple[tuple[str, str], ...], Services] | None = None


def services(environ: Mapping[str, str] | None = None) -> Services:
    """This process's services for the current settings (the environment over local.settings.json);
    SettingsError when they are invalid."""
    global _current
    env = read_environment(environ)
    key = tuple(sorted((k, v) for k, v in env.items() if k.startswith(_SETTING_PREFIXES)))
    with _lock:
        if _current is not None and _current[0] == key:
            return _current[1]
        fresh = Services.build(load_settings(env), env=env)
        _current = (key, fresh)
        return fresh


@atexit.register
def reset() -> None:
    """Close and forget this process's services (tests that change storage underneath them)."""
    global _current
    with _lock:
        if _current is not None:
            _current[1].close()
        _current = None
