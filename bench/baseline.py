"""The code before: a commit's tree exported to a temporary folder, so one benchmark run measures the same case
on the code before a change and on the working tree, side by side (the machine's mood is then the same for both).

The children are this checkout's own `bench/*_child.py` scripts run by path, with PYTHONPATH pointing at the tree
to measure: the way of measuring stays the same, only the app's code changes.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# `main` before the run was overlapped with the fetches and the first run made light: the figures' "before".
BEFORE = "3ca876b"


def available(rev: str) -> bool:
    """Whether this clone has the commit (a shallow clone may not)."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{rev}^{{commit}}"], capture_output=True, check=False
    )
    return found.returncode == 0


@contextmanager
def tree(rev: str) -> Iterator[Path]:
    """The files of `rev` in a temporary folder, removed afterwards."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev], capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory(prefix="leadpier-before-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder)
