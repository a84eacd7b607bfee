"""GET /openapi.json and /docs: the OpenAPI 3 description of every route, generated from the pydantic models."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from sync_core import SERVICE_NAME, __version__
from sync_core.state.records import RunRecord
from sync_core.web.api import MAX_TRIGGER_BODY_BYTES
from sync_core.web.api_models import (
    AlreadyRunning,
    LogDownloadQuery,
    LogsQuery,
    LogTail,
    RunList,
    RunsQuery,
    ServiceInfo,
    TriggerAccepted,
    TriggerBody,
)
from sync_core.web.health_models import HealthDocument
from sync_core.web.responses import ApiResponse, ErrorBody
from sync_core.web.status import StatusDocument

REF = "#/components/schemas/{model}"
KEY_SCHEME = "functionKey"
SWAGGER_UI_VERSION = "5.17.14"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _query(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Query parameters straight from the request model's own schema."""
    schema = model.model_json_schema()
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        if "anyOf" in prop:  # `X | None`: in a query, absent is the None
            prop = next(p for p in prop["anyOf"] if p.get("type") != "null") | {
                k: v for k, v in prop.items() if k != "anyOf"
            }
        parameters.append({"name": name, "in": "query", "required": False, "description": description, "schema": prop})
    return parameters


def _operation(
    operation_id: str, summary: str, responses: dict[str, Any], *, protected: bool, **extra: Any
) -> dict[str, Any]:
    operation = {"operationId": operation_id, "summary": summary, "responses": responses, **extra}
    if protected:
        operation["security"] = [{KEY_SCHEME: []}]
        operation["responses"].setdefault("401", {"description": "missing or wrong function key"})
    else:
        operation["security"] = []
    return operation


def openapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        ServiceInfo,
        HealthDocument,
        StatusDocument,
        RunList,
        RunRecord,
        LogTail,
        TriggerAccepted,
        AlreadyRunning,
        ErrorBody,
        TriggerBody,
    ]
    _, definitions = models_json_schema(
        [(m, "validation" if m is TriggerBody else "serialization") for m in models], ref_template=REF
    )
    bad = _json(ErrorBody, "bad input: what is wrong and what is allowed")
    unavailable = _json(ErrorBody, "settings are missing or invalid, or storage is unreachable")
    failed = _json(ErrorBody, "unexpected failure, with the invocation id to look up")
    paths = {
        "/": {
            "get": _operation(
                "service_info",
                "Service, version, status and endpoints",
                {"200": _json(ServiceInfo, "the service")},
                protected=False,
            )
        },
        "/health": {
            "get": _operation(
                "health",
                "Liveness and readiness",
                {
                    "200": _json(HealthDocument, "healthy or degraded"),
                    "503": _json(HealthDocument, "unhealthy, with the reason"),
                },
                protected=False,
            )
        },
        "/status": {
            "get": _operation(
                "status",
                "Scheduler and job statistics",
                {
                    "200": _json(StatusDocument, "the status"),
                    "503": unavailable,
                    "500": failed,
                },
                protected=True,
            )
        },
        "/runs": {
            "get": _operation(
                "runs",
                "Run history, newest first",
                {
                    "200": _json(RunList, "the most recent runs (a backfill's days are folded into it)"),
                    "400": bad,
                    "503": unavailable,
                    "500": failed,
                },
                protected=True,
                parameters=_query(RunsQuery),
            )
        },
        "/runs/{run_id}": {
            "get": _operation(
                "run",
                "One run",
                {
                    "200": _json(RunRecord, "the run record"),
                    "400": bad,
                    "404": _json(ErrorBody, "no such run"),
                    "503": unavailable,
                    "500": failed,
                },
                protected=True,
                parameters=[
                    {
                        "name": "run_id",
                        "in": "path",
                        "required": True,
                        "description": "e.g. 20260213T180335123Z-1a2b3c, or ...-1a2b3c.01 for one day of a backfill",
                        "schema": {"type": "string", "pattern": r"^\d{8}T\d{9}Z-[0-9a-f]{6}(\.\d{2})?$"},
                    }
                ],
            )
        },
        "/logs": {
            "get": _operation(
                "logs",
                "Recent lines of a day's log",
                {
                    "200": _json(LogTail, "the last lines (an empty list and a message when there is no log)"),
                    "400": bad,
                    "503": unavailable,
                    "500": failed,
                },
                protected=True,
                parameters=_query(LogsQuery),
            )
        },
        "/logs/download": {
            "get": _operation(
                "logs_download",
                "The day's log as a text file",
                {
                    "200": {
                        "description": "the log",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                        "headers": {
                            "Content-Disposition": {
                                "schema": {"type": "string"},
                                "description": 'attachment; filename="scheduler_YYYYMMDD.log"',
                            }
                        },
                    },
                    "400": bad,
                    "404": _json(ErrorBody, "no log for that day"),
                    "503": unavailable,
                    "500": failed,
                },
                protected=True,
                parameters=_query(LogDownloadQuery),
            )
        },
        "/trigger": {
            "post": _operation(
                "trigger",
                "Start a run now, one day, or a range (one run per day)",
                {
                    "202": _json(TriggerAccepted, "queued; GET /runs/{run_id} follows it"),
                    "400": bad,
                    "413": _json(ErrorBody, f"a body over {MAX_TRIGGER_BODY_BYTES} bytes; nothing is queued"),
                    "409": _json(AlreadyRunning, "a plain run while another run holds the lock"),
                    "503": unavailable,
                    "500": failed,
                },
                protected=True,
                requestBody={"required": False, "content": {"application/json": {"schema": _ref(TriggerBody)}}},
            )
        },
        "/dashboard": {
            "get": _operation(
                "dashboard",
                "HTML status page: health, last run, the runs of 7 days drawn, "
                "records per report day, unmatched codes, failed runs linked",
                {
                    "200": {
                        "description": "an HTML page (no script; sent with a strict Content-Security-Policy)",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "503": {
                        "description": "settings or storage keep the figures from being read (still a page, saying why)",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "500": failed,
                },
                protected=True,
                parameters=[
                    {
                        "name": "code",
                        "in": "query",
                        "required": False,
                        "description": "the function key, as a browser passes it; the page's links carry it on",
                        "schema": {"type": "string"},
                    }
                ],
            )
        },
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "This document",
                {
                    "200": {
                        "description": "OpenAPI 3",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                },
                protected=False,
            )
        },
        "/docs": {
            "get": _operation(
                "docs",
                "Swagger UI over /openapi.json",
                {
                    "200": {"description": "an HTML page", "content": {"text/html": {"schema": {"type": "string"}}}},
                },
                protected=False,
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": SERVICE_NAME,
            "version": __version__,
            "description": "Keeps the LE reporting system fed with LeadPier source statistics. "
            "Protected routes take the function key in the x-functions-key header.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {KEY_SCHEME: {"type": "apiKey", "in": "header", "name": "x-functions-key"}},
        },
    }


# Swagger UI comes from a CDN, pinned to one version and to the SHA-384 of that version's files as npm ships them
# (integrity): a changed file does not run. The Content-Security-Policy lets the page run those two files and its own
# few lines, talk only to this app, and send nothing anywhere else.
SWAGGER_UI_BASE = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_UI_VERSION}"
SWAGGER_UI_FILES = {
    "swagger-ui-bundle.js": "sha384-wmyclcVGX/WhUkdkATwhaK1X1JtiNrr2EoYJ+diV3vj4v6OC5yCeSu+yW13SYJep",
    "swagger-ui.css": "sha384-wxLW6kwyHktdDGr6Pv1zgm/VGJh99lfUbzSn6HNHBENZlCN7W602k9VkGdxuFvPn",
}
# persistAuthorization off: the function key typed into "Authorize" lives in the page's memory, never in storage.
_DOCS_SCRIPT = (
    'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", persistAuthorization: false});'
)
_DOCS_SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_DOCS_SCRIPT.encode()).digest()).decode()
DOCS_CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {SWAGGER_UI_BASE}/swagger-ui-bundle.js '{_DOCS_SCRIPT_HASH}'; "
    # Swagger UI sets inline styles as it renders; styles cannot read the key.
    f"style-src {SWAGGER_UI_BASE}/swagger-ui.css 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_HEADERS = {
    "Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def docs_page() -> str:
    """Swagger UI over the app's own document, its files pinned by version and hash."""
    script, css = (f"{SWAGGER_UI_BASE}/{name}" for name in ("swagger-ui-bundle.js", "swagger-ui.css"))
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{SERVICE_NAME}: API</title>
  <link rel="stylesheet" href="{css}" integrity="{SWAGGER_UI_FILES["swagger-ui.css"]}" crossorigin="anonymous">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{script}" integrity="{SWAGGER_UI_FILES["swagger-ui-bundle.js"]}" crossorigin="anonymous"></script>
  <script>{_DOCS_SCRIPT}</script>
</body>
</html>
"""


def docs() -> ApiResponse:
    """GET /docs."""
    return ApiResponse(200, docs_page().encode(), "text/html", dict(DOCS_HEADERS))


def openapi() -> ApiResponse:
    """GET /openapi.json."""
    return ApiResponse.json(200, openapi_document())
