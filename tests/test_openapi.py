"""/openapi.json: every route of the app, schemas generated from the response models, the function key on protected routes."""

from __future__ import annotations

import json
import re

import pytest

from sync_core.state.records import RunRecord
from sync_core.web.api_models import LogTail, RunList, TriggerAccepted
from sync_core.web.health_models import HealthDocument
from sync_core.web.openapi import openapi_document
from sync_core.web.status import StatusDocument
from tests.functions_helpers import indexed_functions


@pytest.fixture(scope="module")
def spec() -> dict:
    return openapi_document()


@pytest.fixture(scope="module")
def http_functions() -> dict[str, tuple[str, list[str], str]]:
    found = {}
    for name, fn in indexed_functions().items():
        trigger = next((b for b in map(json.loads, fn.get_raw_bindings()) if b["type"] == "httpTrigger"), None)
        if trigger:
            found[name] = (trigger["route"], trigger["methods"], trigger["authLevel"].lower())
    return found


def spec_paths(route: str) -> list[str]:
    """The OpenAPI paths one function route serves: optional parameters give two paths, the root route gives /."""
    if route.startswith("{ignored"):
        return ["/"]
    optional = re.search(r"/\{(\w+)\?\}$", route)
    if optional:
        base = route[: optional.start()]
        return [f"/{base}", f"/{base}/{{{optional[1]}}}"]
    return [f"/{route}"]


def test_every_route_of_the_app_is_described_with_its_methods(spec, http_functions) -> None:
    described = set()
    for name, (route, methods, _) in http_functions.items():
        for path in spec_paths(route):
            assert path in spec["paths"], f"{name}: {path} missing"
            assert {m.lower() for m in methods} == set(spec["paths"][path])
            described.add(path)
    assert described == set(spec["paths"])


def test_the_function_key_protects_exactly_the_function_level_routes(spec, http_functions) -> None:
    scheme = spec["components"]["securitySchemes"]["functionKey"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "x-functions-key"}
    for route, _methods, auth in http_functions.values():
        for path in spec_paths(route):
            for operation in spec["paths"][path].values():
                assert (operation["security"] == [{"functionKey": []}]) == (auth == "function"), path


@pytest.mark.parametrize("model", [RunRecord, StatusDocument, HealthDocument, RunList, LogTail, TriggerAccepted])
def test_schemas_come_from_the_response_models(spec, model) -> None:
    schema = spec["components"]["schemas"][model.__name__]
    assert set(schema["properties"]) == {f.alias or n for n, f in model.model_fields.items()}


def test_every_reference_resolves(spec) -> None:
    text = json.dumps(spec)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in spec["components"]["schemas"], ref


def test_query_parameters_state_what_is_allowed(spec) -> None:
    lines = next(p for p in spec["paths"]["/logs"]["get"]["parameters"] if p["name"] == "lines")
    assert lines["schema"]["minimum"] == 1 and lines["schema"]["maximum"] == 1000
    limit = next(p for p in spec["paths"]["/runs"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100
    body = spec["components"]["schemas"]["TriggerBody"]
    assert {"date", "from", "to"} <= set(body["properties"])


def test_the_document_is_json_and_openapi_3(spec) -> None:
    assert spec["openapi"].startswith("3.")
    assert json.loads(json.dumps(spec)) == spec


def test_the_document_is_valid_openapi(spec) -> None:
    from openapi_spec_validator import validate

    validate(spec)  # raises, naming the path, on anything the OpenAPI 3.1 schema refuses


def test_optional_parameters_have_no_null_default(spec) -> None:
    for path in ("/logs", "/logs/download"):
        date_param = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "date")
        assert date_param["schema"] == {"type": "string", "format": "date"}


def test_the_trigger_body_states_its_three_shapes(spec) -> None:
    from jsonschema import Draft202012Validator

    body = spec["components"]["schemas"]["TriggerBody"]
    assert body["properties"]["dry_run"]["type"] == "boolean" and "default" not in body["properties"]["dry_run"]
    validator = Draft202012Validator(body)
    for good in ({}, {"dry_run": True}, {"date": "2026-02-13"}, {"from": "2026-02-01", "to": "2026-02-03"}):
        assert validator.is_valid(good), good
    for bad in (
        {"date": "2026-02-13", "from": "2026-02-01", "to": "2026-02-03"},
        {"from": "2026-02-01"},
        {"to": "2026-02-01"},
        {"date": None},
        {"dry_run": 0},
        {"dry_run": "yes"},
        {"day": "2026-02-13"},
    ):
        assert not validator.is_valid(bad), bad
