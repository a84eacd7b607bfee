"""The Azure Storage SDK at the app's edge: the identity it signs in with, and its errors turned into StorageError."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ConcurrentUpdate, StorageError


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn the SDK's errors into StorageError with a sentence (its messages can carry request URLs)."""
    from azure.core.exceptions import AzureError, HttpResponseError

    try:
        yield
    except (StorageError, ConcurrentUpdate):
        raise
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None) or exc.status_code
        raise StorageError(f"storage failed while {what}: {code}") from None
    except AzureError as exc:
        raise StorageError(f"storage unreachable while {what}: {type(exc).__name__}") from None


def credential(client_id: str | None) -> Any:
    """A managed identity in Azure (user-assigned when a client id is given); developer credentials elsewhere."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)
