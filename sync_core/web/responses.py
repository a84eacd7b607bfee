"""What an HTTP function answers: the response, the refusals handlers raise, and how errors become answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from sync_core.errors import SettingsError, StorageError

log = logging.getLogger("sync_core.responses")  # the name every log line shows: kept when the module moved

JSON = "application/json"
TEXT = "text/plain"


@dataclass
class ApiResponse:
    """What a function answers; function_app.py turns it into a func.HttpResponse as it is."""

    status_code: int
    body: bytes
    mimetype: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    queue_messages: list[str] = field(default_factory=list)  # for /trigger's queue output binding

    @classmethod
    def json(cls, status_code: int, document: BaseModel | Mapping[str, Any], **extra: Any) -> ApiResponse:
        if isinstance(document, BaseModel):
            body = document.model_dump_json(by_alias=True).encode()
        else:
            body = json.dumps(document).encode()
        return cls(status_code, body, JSON, **extra)


class ApiError(Exception):
    """A refusal with its status code and body; raised inside sync_core, answered by `answers`."""

    def __init__(self, status_code: int, body: BaseModel) -> None:
        super().__init__(getattr(body, "error", None) or getattr(body, "message", ""))
        self.status_code = status_code
        self.body = body


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: one sentence saying what is wrong and what is allowed."""

    error: str
    invocation_id: str | None = Field(
        None, description="only on a 500: the invocation to look up in Application Insights"
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, ErrorBody(error=message))


def not_found(message: str) -> ApiError:
    return ApiError(404, ErrorBody(error=message))


def answers(handler: Callable[..., ApiResponse]) -> Callable[..., ApiResponse]:
    """Turn the refusals a handler raises into answers: ApiError as it says, settings or storage trouble as 503."""

    def answer(*args: Any, **kwargs: Any) -> ApiResponse:
        try:
            return handler(*args, **kwargs)
        except ApiError as exc:
            return ApiResponse.json(exc.status_code, exc.body)
        except (SettingsError, StorageError) as exc:
            log.error("%s answered 503: %s", handler.__name__, exc)
            return ApiResponse.json(503, ErrorBody(error=str(exc)))

    answer.__name__ = handler.__name__
    answer.__doc__ = handler.__doc__
    return answer
