"""One sync run: the triggers that start it, the run itself, what its pages held, its recording and the repairs
of earlier runs' bookkeeping, backfills.

Its modules are imported by name (`from sync_core.run import backfill`); the package imports none of them
itself, so loading one module never loads the rest."""

__all__ = ["backfill", "findings", "pipeline", "recording", "repairs", "triggers"]
