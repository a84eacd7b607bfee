"""The business rules, pure: report days, the transform of rows into LE records, campaign codes, the schedule
and the true/false grammar; no network, no storage, no settings.

Its modules are imported by name (`from sync_core.rules import campaign`); the package imports none of them
itself, so loading one module never loads the rest."""

__all__ = ["campaign", "days", "flags", "ncrontab", "schedule", "transform"]
