"""checkov's Bicep (and ARM) checks over infra/, offline: no failed check, and every skip is in the file with its reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

from .conftest import INFRA, ROOT, tools_bin


def _checkov_reports() -> list[dict[str, Any]]:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_COLORS": "1"}
    done = subprocess.run(
        [
            str(tools_bin("checkov")),
            "--framework",
            "bicep",
            "arm",
            "--skip-download",
            "--compact",
            "--output",
            "json",
            "--directory",
            str(INFRA),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert done.stdout.strip(), f"checkov printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    reports = json.loads(done.stdout)
    return reports if isinstance(reports, list) else [reports]


def test_checkov_finds_no_failed_check_and_every_skip_gives_its_reason() -> None:
    reports = _checkov_reports()
    bicep = next(r for r in reports if r["check_type"] == "bicep")
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    assert bicep["summary"]["passed"] >= 25  # the checks really ran over the resources

    skipped = bicep["results"]["skipped_checks"]
    assert all(c["check_result"].get("suppress_comment", "").strip() for c in skipped), "a skip without a reason"
    # Every skip comment in the files is used by a check: none is left over from a resource that changed.
    comments = [m for f in INFRA.rglob("*.bicep") for m in re.findall(r"checkov:skip=(CKV\w+)", f.read_text())]
    assert sorted(comments) == sorted(c["check_id"] for c in skipped)
