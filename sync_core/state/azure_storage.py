"""The Azure Storage SDK at the app's edge: the identity it signs in with, and its errors turned into StorageError."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sync_core.errors import ConcurrentUpdate, StorageError

# The storage service's answers when it does not accept the caller: a token (audience, issuer, lifetime) or a role.
REFUSED_CODES = frozenset(
    {"AuthenticationFailed", "InvalidAuthenticationInfo", "AuthorizationPermissionMismatch", "AuthorizationFailure"}
)
MAX_DETAIL_CHARS = 160


def _said(text: object) -> str:
    """The service's own words (untrusted): one line, printable, bounded."""
    line = re.sub(r"[^\x20-\x7e]+", " ", str(text)).strip()
    return line[:MAX_DETAIL_CHARS] + ("..." if len(line) > MAX_DETAIL_CHARS else "")


def _credential_unavailable() -> tuple[type[BaseException], ...]:
    """The identity library's "no token" error, only once something imported that library: a store under a
    connection string never does, and a run should not pay for importing it (an except clause's classes are
    looked up only when an exception reaches it)."""
    identity = sys.modules.get("azure.identity")
    return (identity.CredentialUnavailableError,) if identity is not None else ()


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn the SDK's errors into StorageError with a sentence (its messages can carry request URLs)."""
    from azure.core.exceptions import AzureError, HttpResponseError

    try:
        yield
    except (StorageError, ConcurrentUpdate):
        raise
    except _credential_unavailable():
        raise StorageError(
            f"no token for storage while {what}: the managed identity endpoint gave none "
            "(is AzureWebJobsStorage__clientId an identity assigned to the app?)"
        ) from None
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None)
        code = str(getattr(code, "value", code) or exc.status_code)
        if code in REFUSED_CODES:
            info = getattr(exc, "additional_info", None) or {}
            detail = info.get("authenticationerrordetail") if isinstance(info, dict) else None
            raise StorageError(
                f"storage refused the app's identity while {what} ({code}"
                + (f': "{_said(detail)}"' if detail else "")
                + "): check the token's audience and lifetime, and the identity's role on the account"
            ) from None
        raise StorageError(f"storage failed while {what}: {code}") from None
    except AzureError as exc:
        raise StorageError(f"storage unreachable while {what}: {type(exc).__name__}") from None


def credential(client_id: str | None) -> Any:
    """A managed identity in Azure (user-assigned when a client id is given); developer credentials elsewhere."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)
