"""The project's small set of errors, each carrying one readable sentence and never a secret."""


class SyncError(Exception):
    """Base of every error the sync reports to a user; str() is a sentence fit for a run record."""


class SettingsError(SyncError):
    """A setting is missing or invalid; the message names it."""


class UpstreamError(SyncError):
    """LeadPier or LE failed after retries, or answered something unusable."""


class LoginError(UpstreamError):
    """LeadPier refused the login."""


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
