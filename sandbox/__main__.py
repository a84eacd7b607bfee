"""`python -m sandbox`: the whole job on this machine: Azurite, stand-ins for LeadPier and LE, one sync, its results."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sandbox.azurite import Azurite
from sandbox.data import generate_rows
from sandbox.upstream import FakeLE, FakeLeadPier

USERNAME, PASSWORD = "sandbox-user", "sandbox-password"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--sources", type=int, default=300, help="LeadPier sources per day (default 300)")
    parser.add_argument("--dry-run", action="store_true", help="send nothing to the LE stand-in")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")

    from sync_core import telemetry
    from sync_core.pipeline import RunRequest, run_sync
    from sync_core.records import utcnow
    from sync_core.settings import load_settings
    from sync_core.status import status_document
    from sync_core.store import StateStore

    with tempfile.TemporaryDirectory(prefix="leadpier-sandbox-") as workdir:
        today = utcnow().astimezone(_zone()).date()
        rows = {d.isoformat(): generate_rows(args.sources, d, seed=i) for i, d in
                enumerate((today - timedelta(days=1), today))}
        with Azurite(Path(workdir)) as azurite, \
                FakeLeadPier(rows, username=USERNAME, password=PASSWORD) as leadpier, FakeLE() as le:
            env = {
                "AzureWebJobsStorage": azurite.connection_string,
                "LEADPIER_BASE_URL": leadpier.url,
                "LEADPIER_USERNAME": USERNAME,
                "LEADPIER_PASSWORD": PASSWORD,
                "LE_API_URL": f"{le.url}/email_dashboard/stats/le_api.php",
                "SYNC_DRY_RUN": "true" if args.dry_run else "false",
            }
            _isolate(env, Path(workdir))
            # With APPLICATIONINSIGHTS_CONNECTION_STRING in the shell, the run's telemetry goes there too.
            telemetry.configure_from_environment()
            try:
                record = run_sync(RunRequest(trigger="cli"))
            finally:
                telemetry.flush()
            settings = load_settings()
            status = status_document(settings, StateStore(settings.storage))
            print("\n== Run record ==")
            print(record.model_dump_json(indent=2))
            print("\n== Status (GET /status) ==")
            print(status.model_dump_json(indent=2))
            print(f"\nLE stand-in received {sum(len(v) for v in le.received_days().values())} records "
                  f"for {', '.join(sorted(le.received_days())) or 'no day'}; LeadPier logins: {leadpier.logins}")
    return 0 if record.status in ("success", "warning") else 1


# Settings that say where state, LeadPier or LE are: none of the shell's may reach the sandbox's run.
_PLACE_SETTINGS = ("AzureWebJobsStorage", "SYNC_", "LEADPIER_", "LE_", "HTTP_TIMEOUT_SECONDS")


def _isolate(env: dict[str, str], workdir: Path) -> None:
    """Only the sandbox's own Azurite and stand-ins: every storage, LeadPier and LE setting in the shell is dropped,
    and the run works in an empty folder, so no local.settings.json is read either."""
    for name in [n for n in os.environ if n.startswith(_PLACE_SETTINGS) and n != "SYNC_TIMEZONE"]:
        del os.environ[name]
    os.environ.update(env)
    os.chdir(workdir)


def _zone() -> ZoneInfo:
    return ZoneInfo(os.environ.get("SYNC_TIMEZONE") or "Asia/Kolkata")


if __name__ == "__main__":
    sys.exit(main())
