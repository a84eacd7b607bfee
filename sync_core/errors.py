"""The project's small set of errors, each carrying one readable sentence and never a secret."""


class SyncError(Exception):
    """Base of every error the sync reports to a user; str() is a sentence fit for a run record."""


class SettingsError(SyncError):
    """A setting is missing or invalid; the message names it."""


class UpstreamError(SyncError):
    """LeadPier or LE failed after retries, or answered something unusable; callers catch a subclass by meaning."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of the answer that failed, when an answer came


class UpstreamUnavailable(UpstreamError):
    """Connection errors, timeouts, 429 or 5xx went on until the retries or the run's deadline ran out."""


class UpstreamRefused(UpstreamError):
    """An answer that asking again would not change: a 4xx (or another status that is not retried), or an API
    error code in the body."""


class AuthExpired(UpstreamRefused):
    """HTTP 401 or 403: the credentials sent are not accepted (any more); a client holding a session logs in again."""


class RequestNotSent(UpstreamError):
    """The HTTP library refused to send a request (a header value it cannot carry, say): not retried; a session
    whose token it was logs in again."""


class UnexpectedAnswer(UpstreamError):
    """A successful status whose body is not the JSON the answer model expects."""


class LoginError(UpstreamError):
    """The LeadPier login was refused, or LeadPier could not be reached to log in; the run stops."""


class DeadlineExceeded(SyncError):
    """The run passed SYNC_RUN_DEADLINE_SECONDS and started no further upstream call."""


class StorageError(SyncError):
    """The state container could not be read or written."""


class ConcurrentUpdate(StorageError):
    """A conditional write lost to another writer more times than it retries."""


class LockLost(StorageError):
    """The run's lease on the lock blob could not be renewed; it must not write any further."""


class LockBusy(SyncError):
    """Another run holds the lock."""
