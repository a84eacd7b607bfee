"""GET /health through the function: healthy, degraded, unhealthy, and an answer whatever storage does."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.queue import QueueClient

from sandbox.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from sandbox.upstream import closed_port_url
from sync_core.settings import load_storage_target
from sync_core.state.records import JobStats, LastExecution
from sync_core.state.store import StateStore
from tests.functions_helpers import App, body


@pytest.fixture
def app(sync_env: dict[str, str]) -> App:
    return App()


def set_stats(change) -> None:
    StateStore(load_storage_target(os.environ)).update_job_stats(change)


def check(app: App) -> tuple[int, dict]:
    response = app.get("health", "/health")
    assert response.mimetype == "application/json"
    return response.status_code, body(response)


def test_healthy_after_a_recent_success(app: App) -> None:
    set_stats(lambda s: setattr(s, "last_success_at", datetime.now(UTC) - timedelta(minutes=3)))
    code, shown = check(app)
    assert code == 200
    assert shown["status"] == "healthy"
    assert shown["scheduler_running"] is True
    assert shown["timestamp"].endswith("+05:30")
    assert datetime.fromisoformat(shown["timestamp"]).utcoffset() == timedelta(hours=5, minutes=30)
    assert set(shown["checks"]) >= {"settings", "storage", "last_success", "poison_queue"}
    assert shown["checks"]["storage"]["status"] == "ok"
    assert shown["checks"]["poison_queue"]["messages"] == 0
    assert shown["checks"]["last_success"]["age_seconds"] >= 180


def test_a_fresh_app_with_no_run_yet_is_healthy(app: App) -> None:
    code, shown = check(app)
    assert code == 200 and shown["status"] == "healthy"
    assert shown["checks"]["last_success"]["finished_at"] is None


def test_a_last_success_older_than_three_intervals_is_degraded(app: App) -> None:
    set_stats(lambda s: setattr(s, "last_success_at", datetime.now(UTC) - timedelta(minutes=45)))
    code, shown = check(app)
    assert code == 200
    assert shown["status"] == "degraded"
    assert shown["checks"]["last_success"]["status"] == "warning"
    assert "3 schedule intervals" in shown["reason"]


def test_no_success_long_after_the_first_run_is_degraded(app: App) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=2)

    def failed_long_ago(stats: JobStats) -> None:
        stats.total_runs = stats.failed_runs = 1
        stats.last_execution = LastExecution(
            run_id="20260213T180335123Z-1a2b3c",
            timestamp=long_ago,
            status="failed",
            trigger="timer",
            error="LeadPier refused the login",
        )

    set_stats(failed_long_ago)
    code, shown = check(app)
    assert code == 200 and shown["status"] == "degraded"
    assert "no successful run yet" in shown["reason"]


def test_the_disabled_timer_shows_and_staleness_is_not_held_against_it(app: App, monkeypatch) -> None:
    monkeypatch.setenv("AzureWebJobs.sync_timer.Disabled", "true")
    set_stats(lambda s: setattr(s, "last_success_at", datetime.now(UTC) - timedelta(days=2)))
    code, shown = check(app)
    assert code == 200
    assert shown["scheduler_running"] is False
    assert shown["status"] == "healthy"


def test_messages_in_the_poison_queue_degrade_health(app: App, azurite: Azurite) -> None:
    queue = QueueClient.from_connection_string(azurite.connection_string, "leadpier-sync-runs-poison")
    try:
        queue.create_queue()
    except Exception:
        pass
    queue.clear_messages()
    queue.send_message("a")
    queue.send_message("b")
    try:
        code, shown = check(app)
    finally:
        queue.clear_messages()
    assert code == 200
    assert shown["status"] == "degraded"
    assert shown["checks"]["poison_queue"]["messages"] == 2


@pytest.mark.parametrize("missing", ["LEADPIER_PASSWORD", "LE_API_URL", "LEADPIER_USERNAME"])
def test_a_missing_setting_is_unhealthy_naming_it(app: App, monkeypatch, missing: str) -> None:
    monkeypatch.delenv(missing)
    code, shown = check(app)
    assert code == 503
    assert shown["status"] == "unhealthy"
    assert missing in shown["reason"]
    assert shown["checks"]["settings"]["status"] == "error"


def test_an_unresolved_key_vault_reference_counts_as_missing(app: App, monkeypatch) -> None:
    monkeypatch.setenv("LEADPIER_PASSWORD", "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/pw)")
    code, shown = check(app)
    assert code == 503 and "LEADPIER_PASSWORD" in shown["reason"]
    assert "vault.azure.net" not in str(shown)


def test_an_invalid_schedule_is_unhealthy_naming_it(monkeypatch, sync_env) -> None:
    monkeypatch.setenv("SYNC_SCHEDULE", "every ten minutes")
    app = App()
    code, shown = check(app)
    assert code == 503
    assert "SYNC_SCHEDULE" in shown["reason"]
    assert shown["checks"]["timer"]["schedule"] == "0 */10 * * * *"
    assert any("SYNC_SCHEDULE" in p for p in shown["checks"]["timer"]["problems"])


def test_unreachable_storage_is_unhealthy_and_answered(app: App, monkeypatch) -> None:
    closed = closed_port_url()
    monkeypatch.setenv(
        "AzureWebJobsStorage",
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={closed}/{ACCOUNT_NAME};QueueEndpoint={closed}/{ACCOUNT_NAME};",
    )
    code, shown = check(app)
    assert code == 503
    assert shown["status"] == "unhealthy"
    assert shown["checks"]["storage"]["status"] == "error"
    assert "storage" in shown["reason"]
    assert ACCOUNT_KEY not in str(shown)


def test_no_storage_setting_at_all_is_unhealthy(app: App, monkeypatch) -> None:
    monkeypatch.delenv("AzureWebJobsStorage")
    code, shown = check(app)
    assert code == 503
    assert "AzureWebJobsStorage" in shown["reason"]
