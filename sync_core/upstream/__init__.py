"""The upstream clients: one HTTP caller (timeouts, retries, the run's deadline), LeadPier and its login, LE.

Its modules are imported by name (`from sync_core.upstream import http`); the package imports none of them
itself, so loading one module never loads the rest."""

__all__ = ["http", "le", "leadpier", "leadpier_auth"]
