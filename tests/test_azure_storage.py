"""The storage SDK's edge: a store under a connection string never loads the identity library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sandbox.azurite import Azurite

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import sys
from sync_core.settings import ConnectionStringTarget
from sync_core.state.store import StateStore
store = StateStore(ConnectionStringTarget(connection_string=sys.argv[1], container="identity-free"))
store.ensure_container()
store.load_job_stats()
store.update_job_stats(lambda stats: None)
assert store.load_run("20260213T175335101Z-9f00aa") is None
print("azure.identity" in sys.modules)
"""


def test_a_store_under_a_connection_string_never_imports_the_identity_library(azurite: Azurite) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, azurite.connection_string],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
