"""Day one in Azure on one machine: the app with exactly the template's app settings, storage that takes only
managed-identity tokens over HTTPS, and no key anywhere; a token storage refuses is said in a sentence."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.identity import ManagedIdentityCredential
from azure.storage.queue import QueueClient

from sandbox.azurite import ACCOUNT_KEY
from sandbox.template import TemplateError, app_settings, parse_infra
from sandbox.world import CLIENT_ID, World, identity_world
from sync_core.settings import AccountUrlTarget, load_settings
from sync_core.state.queues import POISON_QUEUE
from tests.functions_helpers import App, body

STORAGE_RESOURCE = "https://storage.azure.com"
# What the rehearsal adds to the template's settings: the platform's identity endpoint and secret, the certificate
# the loopback services present, and LeadPier's address (the app's default is the real LeadPier).
ADDED = {"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "REQUESTS_CA_BUNDLE", "LEADPIER_BASE_URL"}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One identity-only world for the module; os.environ and the working folder are put back afterwards."""
    saved, cwd = dict(os.environ), Path.cwd()
    try:
        with identity_world(tmp_path_factory.mktemp("day-one"), sources=40) as here:
            yield here
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(cwd)


@pytest.fixture
def here(rehearsal: World) -> Iterator[World]:
    """The world with its identity endpoint back to issuing good tokens, and the test's own environment."""
    assert rehearsal.identity is not None
    rehearsal.identity.expired = rehearsal.identity.wrong_audience = rehearsal.identity.refuse = False
    environ = dict(os.environ)
    os.environ.update(rehearsal.settings)
    yield rehearsal
    os.environ.clear()
    os.environ.update(environ)


def test_the_app_gets_exactly_the_template_settings_and_no_key(here: World) -> None:
    from_template = {name: value for name, value in here.settings.items() if name not in ADDED}
    assert set(here.settings) - set(from_template) == ADDED
    parsed = parse_infra()
    site_settings = parsed["modules/function-app.bicep"]["resources"]["app"]["config"]["properties"]["siteConfig"]
    assert set(from_template) == {entry["name"] for entry in site_settings["appSettings"]}
    assert from_template["AzureWebJobsStorage__credential"] == "managedidentity"
    assert from_template["AzureWebJobsStorage__clientId"] == CLIENT_ID
    assert from_template["AzureWebJobsStorage__blobServiceUri"].startswith("https://127.0.0.1:")
    everything = json.dumps(dict(os.environ))
    assert "AccountKey" not in everything and ACCOUNT_KEY not in everything
    assert "AzureWebJobsStorage" not in os.environ and "SYNC_STORAGE_CONNECTION" not in os.environ
    storage = load_settings().storage
    assert isinstance(storage, AccountUrlTarget) and storage.client_id == CLIENT_ID
    # Nothing a deployment alone knows is made up: a value not given is an error naming it.
    with pytest.raises(TemplateError, match="no value for 'storage'"):
        app_settings(parsed, {"hasLeApiKey": True}, secrets={})


def le_records(world: World) -> int:
    """Every LE record the world's LE has received, all days together."""
    return sum(len(records) for records in world.le.received_days().values())


def test_a_timer_sync_runs_on_tokens_of_the_user_assigned_identity(here: World) -> None:
    assert here.identity is not None
    before = le_records(here)
    App().tick()

    runs = body(App().get("runs", "/runs"))
    latest = runs["runs"][0]
    assert (latest["trigger"], latest["status"]) == ("timer", "success"), latest
    assert le_records(here) > before
    assert (STORAGE_RESOURCE, CLIENT_ID) in here.identity.requests
    assert {client for _, client in here.identity.requests} == {CLIENT_ID}


def test_a_triggered_run_goes_through_the_queue_worker(here: World) -> None:
    app = App()
    response, out = app.post_trigger()
    assert response.status_code == 202, response.get_body()
    run_id = body(response)["run_id"]
    messages = out.get()
    for message in messages if isinstance(messages, list) else [messages]:
        app.work(message)
    shown = body(app.get("runs", f"/runs/{run_id}", route_params={"run_id": run_id}))
    assert shown["status"] == "success", shown


@pytest.mark.parametrize(
    ("function", "path"),
    [
        ("service_info", "/"),
        ("health", "/health"),
        ("status", "/status"),
        ("runs", "/runs"),
        ("logs", "/logs"),
        ("logs_download", "/logs/download"),
        ("dashboard", "/dashboard"),
        ("openapi", "/openapi.json"),
        ("docs", "/docs"),
    ],
)
def test_every_route_answers(here: World, function: str, path: str) -> None:
    App().tick()  # something to show
    response = App().get(function, path)
    assert response.status_code == 200, response.get_body()[:300]


def test_health_counts_the_poison_queue_with_the_identity(here: World) -> None:
    poison = QueueClient(
        here.azurite.queue_endpoint, POISON_QUEUE, credential=ManagedIdentityCredential(client_id=CLIENT_ID)
    )
    try:
        poison.create_queue()
    except Exception:
        pass  # an earlier test's
    poison.clear_messages()
    poison.send_message("a run that failed every delivery")
    try:
        shown = body(App().get("health", "/health"))
    finally:
        poison.clear_messages()
    assert shown["checks"]["storage"]["status"] == "ok"
    assert shown["checks"]["poison_queue"]["messages"] == 1
    assert shown["status"] == "degraded"
    assert shown["checks"]["runtime"]["python_asked"] == here.settings["SYNC_PYTHON_VERSION"]


@pytest.mark.parametrize(
    ("knob", "said"), [("expired", "The token is expired"), ("wrong_audience", "Invalid token audience")]
)
def test_a_token_storage_refuses_is_said_in_a_sentence(here: World, knob: str, said: str) -> None:
    assert here.identity is not None
    setattr(here.identity, knob, True)

    response = App().get("health", "/health")
    shown = body(response)
    assert response.status_code == 503
    detail = shown["checks"]["storage"]["detail"]
    assert detail.startswith("storage refused the app's identity while ")
    assert said in detail and "the token's audience and lifetime" in detail
    assert shown["reason"].startswith(detail)
    assert here.settings["IDENTITY_HEADER"] not in json.dumps(shown)


def test_no_identity_at_all_is_said_in_a_sentence(here: World) -> None:
    assert here.identity is not None
    here.identity.refuse = True
    shown = body(App().get("health", "/health"))
    assert shown["status"] == "unhealthy"
    assert "the managed identity endpoint gave none" in shown["checks"]["storage"]["detail"]
