"""Bad HTTP input to every function of function_app: hypothesis-made query strings, route values and bodies.
Never a 500, a JSON error that says what is wrong, and no change to the state container."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import pytest
from azure.storage.blob import ContainerClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.upstream import FakeLE, FakeLeadPier
from sync_core.web.api import MAX_TRIGGER_BODY_BYTES
from tests.faults.conftest import sync
from tests.functions_helpers import App

FUZZ = settings(
    max_examples=60,
    deadline=None,
    # The state container is shared by the examples on purpose: each one is compared with the state before it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

odd_text = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-5",
        "abc",
        "100000",
        "1001",
        "101",
        "1",
        "50",
        "1e3",
        "1.5",
        " 7",
        "\u0663",
        "0x10",
        "+3",
        "2026-02-30",
        "2026-13-01",
        "20260213",
        "2026-02-13T00:00:00",
        "9999-12-31",
        "0000-00-00",
        "2026-2-3",
        "../../job_stats.json",
        "runs/../source.json",
        "%00",
        "\x00",
        "'; DROP TABLE runs; --",
        "null",
        "true",
        "{}",
        "[]",
        "\u202e",
        "a" * 5000,
    ]
)
query_value = st.one_of(odd_text, st.text(max_size=40), st.integers().map(str))
query_names = st.one_of(
    st.sampled_from(["lines", "date", "limit", "from", "to", "run_id", "code", "dry_run"]), st.text(max_size=10)
)
queries = st.dictionaries(query_names, query_value, max_size=4)
run_ids = st.one_of(
    odd_text,
    st.text(max_size=60),
    st.from_regex(r"\A[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}(\.[0-9]{2})?\Z"),  # well formed, never stored: 404
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | odd_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
trigger_shapes = st.fixed_dictionaries(
    {},
    optional={
        "date": json_values,
        "from": json_values,
        "to": json_values,
        "dry_run": json_values,
        "extra": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=80),
    json_values.map(lambda v: json.dumps(v).encode()),
    trigger_shapes.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b"{",
            b"\xff\xfe{}",
            b'{"date": "2026-02-13"',
            b"[]",
            b"null",
            b'"2026-02-13"',
            b'{"from": "2026-01-01", "to": "2026-03-01"}',
            b'{"date": "9999-12-31"}',
            b'{"date": "2026-02-13", "from": "2026-02-12", "to": "2026-02-13"}',
        ]
    ),
)


@pytest.fixture
def app(env: dict[str, str], leadpier: FakeLeadPier, le: FakeLE, blob_container: ContainerClient) -> App:
    assert sync().status == "success"  # state to protect: a run record, job_stats.json, the day's log, source.json
    return App()


def snapshot(container: ContainerClient) -> dict[str, str]:
    """Every blob and its ETag: any write shows as a new name or a new ETag."""
    return {b.name: b.etag for b in container.list_blobs()}


def check_answer(response: func.HttpResponse, *, allowed: set[int]) -> Any:
    assert response.status_code != 500, response.get_body()[:500]
    assert response.status_code in allowed, (response.status_code, response.get_body()[:500])
    if response.status_code >= 400:
        assert response.mimetype == "application/json"
        error = json.loads(response.get_body())["error"]
        assert isinstance(error, str) and error and "Traceback" not in error
    return response


@FUZZ
@given(params=queries)
def test_logs_query(app: App, blob_container: ContainerClient, params: dict[str, str]) -> None:
    before = snapshot(blob_container)
    check_answer(app.get("logs", "/logs", params=params), allowed={200, 400})
    assert snapshot(blob_container) == before


@FUZZ
@given(params=queries)
def test_logs_download_query(app: App, blob_container: ContainerClient, params: dict[str, str]) -> None:
    before = snapshot(blob_container)
    check_answer(app.get("logs_download", "/logs/download", params=params), allowed={200, 400, 404})
    assert snapshot(blob_container) == before


@FUZZ
@given(params=queries)
def test_runs_query(app: App, blob_container: ContainerClient, params: dict[str, str]) -> None:
    before = snapshot(blob_container)
    check_answer(app.get("runs", "/runs", params=params), allowed={200, 400})
    assert snapshot(blob_container) == before


@FUZZ
@given(run_id=run_ids, params=queries)
def test_one_run_route(app: App, blob_container: ContainerClient, run_id: str, params: dict[str, str]) -> None:
    before = snapshot(blob_container)
    response = app.get("runs", f"/runs/{run_id}", params=params, route_params={"run_id": run_id} if run_id else {})
    check_answer(response, allowed={200, 400, 404})
    assert snapshot(blob_container) == before


@FUZZ
@given(params=queries, name=st.sampled_from(["service_info", "health", "status", "openapi", "docs"]))
def test_routes_without_input_ignore_any_query(
    app: App, blob_container: ContainerClient, params: dict[str, str], name: str
) -> None:
    before = snapshot(blob_container)
    check_answer(app.get(name, "/", params=params), allowed={200})
    assert snapshot(blob_container) == before


@settings(FUZZ, max_examples=150)
@given(body=bodies)
def test_trigger_body(app: App, blob_container: ContainerClient, body: bytes) -> None:
    before = snapshot(blob_container)
    response, queued = app.post_trigger(body)
    # A body past the cap is refused whole (413) before it is read; anything under it is judged on what it says.
    check_answer(response, allowed={413} if len(body) > MAX_TRIGGER_BODY_BYTES else {202, 400})
    after = snapshot(blob_container)
    if response.status_code == 202:
        # A valid request: queued run records are added, nothing that was there is touched.
        assert {name: after[name] for name in before} == before
        assert all(name.startswith("runs/") for name in set(after) - set(before))
        assert queued.get()
    else:
        assert after == before
        assert queued.get() is None


def test_the_named_bad_inputs_are_400(app: App, blob_container: ContainerClient) -> None:
    """The documented list of bad input, each a 400 that changes nothing."""
    before = snapshot(blob_container)
    for lines in ("0", "-5", "abc", "100000"):
        assert app.get("logs", "/logs", params={"lines": lines}).status_code == 400
    for name, path in (("logs", "/logs"), ("logs_download", "/logs/download")):
        assert app.get(name, path, params={"date": "2026-02-30"}).status_code == 400
    assert app.get("runs", "/runs/not-a-run", route_params={"run_id": "not-a-run"}).status_code == 400
    assert app.post_trigger(b"not json")[0].status_code == 400
    assert app.post_trigger({"from": "2026-01-01", "to": "2026-03-01"})[0].status_code == 400
    assert app.post_trigger({"date": "13/02/2026"})[0].status_code == 400
    assert snapshot(blob_container) == before
