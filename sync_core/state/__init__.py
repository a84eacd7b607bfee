"""The app's state in Azure Storage: the blob documents, the store over the one container, the day's log, the run
lock and the queue of runs.

Its modules are imported by name (`from sync_core.state import azure_storage`); the package imports none of them
itself, so loading one module never loads the rest."""

__all__ = ["azure_storage", "day_log", "lock", "queues", "records", "retries", "store"]
