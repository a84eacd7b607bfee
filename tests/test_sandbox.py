"""`python -m sandbox`: one run against its own Azurite and stand-ins, never against storage or upstreams configured
in the shell or in local.settings.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from sandbox.azurite import Azurite
from sandbox.upstream import FakeLE, FakeLeadPier
from tests.functions_helpers import REPO_ROOT


def test_the_sandbox_never_touches_the_storage_or_upstreams_of_the_shell_or_local_settings(
    azurite_fresh: Azurite, tmp_path: Path
) -> None:
    with FakeLeadPier(username="real-user", password="real-password") as real_leadpier, FakeLE() as real_le:
        shell = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "SYNC_STORAGE_CONNECTION": azurite_fresh.connection_string,
            "LEADPIER_BASE_URL": real_leadpier.url,
            "LE_API_URL": f"{real_le.url}/le_api.php",
            "SYNC_STATE_CONTAINER": "production-state",
        }
        (tmp_path / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": {
            "AzureWebJobsStorage": azurite_fresh.connection_string,
            "SYNC_STORAGE_ACCOUNT_URL": "https://production.blob.core.windows.net",
            "LEADPIER_USERNAME": "real-user",
            "LEADPIER_PASSWORD": "real-password",
        }}))

        done = subprocess.run([sys.executable, "-m", "sandbox", "--sources", "5"], cwd=tmp_path, env=shell,
                              capture_output=True, text=True, timeout=180)

        assert done.returncode == 0, done.stderr[-2000:]
        assert real_leadpier.requests == [] and real_le.puts == []
    with BlobServiceClient.from_connection_string(azurite_fresh.connection_string) as outside:
        assert [c.name for c in outside.list_containers()] == []
