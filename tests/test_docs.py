"""Docs that cannot drift: the function table and every count of functions against the app's own metadata, and the
runbook's commands parsed, and run against the sandbox where they apply."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docs_helpers import bash_syntax_error, commands, section, shell_blocks
from tests.functions_helpers import REPO_ROOT, indexed_functions, serving

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
NUMBERS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14}


@pytest.fixture(scope="module")
def functions() -> dict[str, dict[str, Any]]:
    """Each function's trigger binding, as the host reads it."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("SYNC_SCHEDULE", raising=False)
        found = indexed_functions()
    return {
        name: next(json.loads(b) for b in fn.get_raw_bindings() if json.loads(b)["direction"] == "IN")
        for name, fn in found.items()
    }


def _function_table() -> dict[str, list[str]]:
    """DEPLOY.md's table of the app's functions: name -> its other cells."""
    text = section((REPO_ROOT / "docs" / "DEPLOY.md").read_text(), "## The app's functions")
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| `")
    ]
    return {row[0].strip("`"): row[1:] for row in rows}


def test_the_deploy_function_table_lists_every_function_with_its_trigger_and_auth(functions: dict[str, Any]) -> None:
    table = _function_table()
    assert sorted(table) == sorted(functions)
    for name, binding in functions.items():
        trigger, auth = table[name][0], table[name][1]
        if binding["type"] == "httpTrigger":
            path = "/" + re.sub(r"\{[^}]*\}", "", binding["route"]).rstrip("/")
            path = "/" if path.startswith("/{") or binding["route"].startswith("{") else path
            assert all(f"{method.upper()} {path}" in trigger for method in binding["methods"]), (name, trigger)
            assert auth == binding["authLevel"].lower(), name
        elif binding["type"] == "timerTrigger":
            assert "timer" in trigger and auth == "", name
        else:
            assert binding["queueName"] in trigger and auth == "", name


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_count_of_functions_in_the_docs_is_the_apps(doc: Any, functions: dict[str, Any]) -> None:
    words = "|".join(NUMBERS)
    counts = re.findall(rf"\b(\d+|{words}) (?:Azure )?functions\b", doc.read_text(), re.I)
    assert [int(c) if c.isdigit() else NUMBERS[c.lower()] for c in counts] == [len(functions)] * len(counts)


# -- the runbook ---------------------------------------------------------------------------------------

RUNBOOK = REPO_ROOT / "docs" / "RUNBOOK.md"


def runbook_blocks() -> list[str]:
    return shell_blocks(RUNBOOK.read_text())


def test_every_block_of_the_runbook_is_valid_shell() -> None:
    blocks = runbook_blocks()
    assert len(blocks) >= 10
    assert [bash_syntax_error(block) for block in blocks] == [None] * len(blocks)


def test_the_runbook_is_linked_from_the_readme_and_operations() -> None:
    for doc in (REPO_ROOT / "README.md", REPO_ROOT / "docs" / "OPERATIONS.md"):
        assert "RUNBOOK.md" in doc.read_text(), doc.name


def test_the_runbook_covers_what_an_operator_meets() -> None:
    headings = re.findall(r"^## \d+\. (.+)$", RUNBOOK.read_text(), re.M)
    for topic in (
        "dashboard",
        "/health",
        "Backfill",
        "poison queue",
        "Rotating the LeadPier password",
        "Rolling back",
        "alerts",
    ):
        assert any(topic.lower() in h.lower() for h in headings), topic
    health_table = section(RUNBOOK.read_text(), "## 3. What `/health` says, and what fixes it")
    for said in (
        "settings",
        "Key Vault",
        "storage",
        "last successful run",
        "poison",
        "catching up",
        "catch-up window",
        "timer",
    ):
        assert said.lower() in health_table.lower(), said


@pytest.fixture
def sandbox_url(sync_env: dict[str, str], leadpier: Any) -> Iterator[str]:
    """The app's routes on 127.0.0.1 as `scripts/sandbox.sh --serve` serves them, with its key checked."""
    with serving(SANDBOX_KEY) as base:
        yield base


SANDBOX_KEY = "runbook-test-key"


def test_every_curl_of_the_runbook_works_against_the_sandbox(sandbox_url: str) -> None:
    lines = [c for block in runbook_blocks() for c in commands(block) if c.startswith(("curl ", 'echo "$URL'))]
    assert sum(line.startswith("curl ") for line in lines) >= 10
    env = {**os.environ, "URL": sandbox_url, "KEY": SANDBOX_KEY}
    for line in lines:
        done = subprocess.run(["bash", "-c", f"set -euo pipefail; {line}"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, (line, done.stderr)
        if line.startswith("echo"):  # an address to open: it opens
            with urllib.request.urlopen(done.stdout.strip(), timeout=30) as page:
                assert page.status == 200 and b"Runs, last 7 days" in page.read()
        else:
            json.loads(done.stdout)  # every answer is the route's JSON, not an error page


# -- the reference's examples and figures against the code ---------------------------------------------

REFERENCE = REPO_ROOT / "docs" / "REFERENCE.md"
ARCHITECTURE = REPO_ROOT / "docs" / "ARCHITECTURE.md"
JSON_FENCE = re.compile(r"^```json\n(.*?)^```", re.M | re.S)
ELIDED = "..."  # an example's "...": "..." stands for the fields it leaves out


def _example_models() -> dict[tuple[str, int], Any]:
    """Each JSON example of the reference, by its section and place in it: the model it shows, or None with why."""
    from sync_core.rules.transform import LePayload
    from sync_core.state.queues import RunMessage
    from sync_core.state.records import LeadPierSession, RunRecord
    from sync_core.upstream.le import LeAnswer
    from sync_core.upstream.leadpier import _StatsAnswer
    from sync_core.upstream.leadpier_auth import _LoginAnswer
    from sync_core.web.api_models import AlreadyRunning, LogTail, RunList, ServiceInfo, TriggerAccepted
    from sync_core.web.health_models import HealthDocument
    from sync_core.web.status import StatusDocument

    not_a_model = None  # a body the client builds as a dict (the stand-ins' tests assert it), or Azure's own policy
    return {
        ("### 2.2 `source.json`", 0): LeadPierSession,
        ("### 2.9 The queue", 0): RunMessage,
        ("### 2.10 Retention: the lifecycle rule", 0): not_a_model,
        ("### 3.6 The run record", 0): RunRecord,
        ("### 4.4 `GET /`", 0): ServiceInfo,
        ("### 4.5 `GET /health`", 0): HealthDocument,
        ("### 4.6 `GET /status`", 0): StatusDocument,
        ("### 4.7 `GET /runs`, `GET /runs/{run_id}`", 0): RunList,
        ("### 4.8 `GET /logs`", 0): LogTail,
        ("### 4.10 `POST /trigger`", 0): TriggerAccepted,
        ("### 4.10 `POST /trigger`", 1): TriggerAccepted,
        ("### 4.10 `POST /trigger`", 2): AlreadyRunning,
        ("### 6.2 LeadPier: login", 0): not_a_model,
        ("### 6.2 LeadPier: login", 1): _LoginAnswer,
        ("### 6.3 LeadPier: source statistics", 0): not_a_model,
        ("### 6.3 LeadPier: source statistics", 1): _StatsAnswer,
        ("### 6.4 LE: the PUT of a report day", 0): LePayload,
        ("### 6.4 LE: the PUT of a report day", 1): LeAnswer,
    }


def _json_examples() -> dict[tuple[str, int], Any]:
    text = REFERENCE.read_text()
    headings = [h for h in re.findall(r"^###? .+$", text, re.M)]
    found: dict[tuple[str, int], Any] = {}
    for heading in headings:
        part = section(text, heading)
        if heading.startswith("## "):  # a chapter's own text, up to its first section
            part = part.split("\n### ", 1)[0]
        for index, block in enumerate(JSON_FENCE.findall(part)):
            found[(heading, index)] = json.loads(block)
    return found


def _keys_kept(example: Any, dumped: Any, path: str = "") -> list[str]:
    """The example's field names (at any depth) that the model does not have: a renamed or removed field."""
    if isinstance(example, dict) and isinstance(dumped, dict):
        missing = [f"{path}.{k}" for k in example if k != ELIDED and k not in dumped]
        return missing + [m for k, v in example.items() if k in dumped for m in _keys_kept(v, dumped[k], f"{path}.{k}")]
    if isinstance(example, list) and isinstance(dumped, list):
        return [
            m for i, (e, d) in enumerate(zip(example, dumped, strict=False)) for m in _keys_kept(e, d, f"{path}[{i}]")
        ]
    return []


def _without_elisions(example: Any) -> Any:
    if isinstance(example, dict):
        return {k: _without_elisions(v) for k, v in example.items() if k != ELIDED}
    if isinstance(example, list):
        return [_without_elisions(v) for v in example if v != ELIDED]
    return example


def test_every_json_example_of_the_reference_has_its_model() -> None:
    assert sorted(_json_examples()) == sorted(_example_models())


@pytest.mark.parametrize("where", sorted(k for k, v in _example_models().items() if v is not None), ids=str)
def test_every_json_example_of_the_reference_is_what_its_model_reads_and_writes(where: tuple[str, int]) -> None:
    model = _example_models()[where]
    example = _json_examples()[where]

    parsed = model.model_validate(_without_elisions(example))

    assert _keys_kept(example, parsed.model_dump(mode="json", by_alias=True)) == []


def _settings_table() -> dict[str, str]:
    """REFERENCE.md's app settings: name -> its default cell."""
    rows = [
        line for line in section(REFERENCE.read_text(), "### 1.1 App settings").splitlines() if line.startswith("| `")
    ]
    table: dict[str, str] = {}
    for row in rows:
        names, default = (cell.strip() for cell in row.strip("|").split("|")[:2])
        for name in re.findall(r"`([^`]+)`", names):
            table[name] = default
    return table


def test_the_settings_table_names_every_setting_the_app_reads_and_no_other() -> None:
    read = set()
    for module in ("sync_core/settings.py", "sync_core/state/queues.py"):
        source = (REPO_ROOT / module).read_text()
        read |= set(re.findall(r'"((?:AzureWebJobsStorage(?:__\w+)?)|(?:SYNC|LEADPIER|LE|HTTP)_[A-Z_]+)"', source))
    read -= {"SYNC_"}  # a prefix, not a setting

    assert sorted(_settings_table()) == sorted(read)


def test_the_settings_table_gives_each_setting_the_models_default() -> None:
    from sync_core.settings import DEFAULT_STATE_CONTAINER, Settings

    table = _settings_table()
    defaults = {field.alias: field for field in Settings.model_fields.values() if field.alias}
    assert table["SYNC_STATE_CONTAINER"] == f"`{DEFAULT_STATE_CONTAINER}`"
    for name, field in defaults.items():
        cell = table[name]
        if field.is_required():
            assert cell == "required", name
        elif field.default is None:
            assert cell == "unset", name
        elif cell.startswith("`"):
            shown = cell.strip("`")
            default = field.default
            if isinstance(default, bool):
                assert shown == str(default).lower(), name
            elif isinstance(default, int | float):
                assert float(shown) == default, name
            else:
                assert shown == str(default).rstrip("/"), name


def _steady_run_figure(doc: Path, lead: str) -> int:
    text = " ".join(doc.read_text().split())
    found = re.search(re.escape(lead) + r".*?: (\d+)\. ", text)
    assert found, (doc.name, lead)
    return int(found[1])


def test_the_storage_requests_of_a_steady_state_run_are_the_figure_the_docs_give(
    sync_env: dict[str, str], leadpier: Any, le: Any
) -> None:
    from dataclasses import replace
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sync_core.run.pipeline import RunRequest, run_sync
    from sync_core.services import services, timing, use_timing

    now = datetime(2026, 2, 14, 10, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    for day in ("2026-02-13", "2026-02-14"):
        leadpier.set_rows(day, [{"source": "mta_0214-lbe-e1", "visitors": 3}])
    with use_timing(replace(timing(), clock=lambda: now)):
        first = run_sync(RunRequest(trigger="timer"))  # logs in, finalizes yesterday, starts the day's log
        store = services().store
        before = store.requests
        steady = run_sync(RunRequest(trigger="timer"))
        made = store.requests - before

    assert first.status == steady.status == "success" and steady.report_dates == ["2026-02-14"]
    assert len(leadpier.login_requests) == 1  # the second run reused the stored token
    assert steady.recording is None  # nothing left for, or repaired by, this run
    assert made == _steady_run_figure(REFERENCE, "Storage requests of a steady-state timer run")
    assert made == _steady_run_figure(ARCHITECTURE, "Storage requests of a steady-state run")


def test_the_architecture_table_lists_every_module_and_only_modules_that_exist() -> None:
    table = section(ARCHITECTURE.read_text(), "## Modules")
    listed = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    package = REPO_ROOT / "sync_core"
    modules = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in package.rglob("*.py")
        if p.name != "__init__.py" and "dashboard" not in p.parts  # the dashboard is one row, its files named in it
    }

    assert listed - {"function_app.py", "sync_core/web/dashboard/"} == modules
    assert all((REPO_ROOT / path).exists() for path in listed)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_of_the_app_the_docs_name_exists(doc: Path) -> None:
    named = set(re.findall(r"\b((?:sync_core|sandbox|bench|scripts|tests|infra)/[\w./-]*\w)", doc.read_text()))

    written_by_the_benchmark = "bench/out"  # its figures, made by `python -m bench`, are not in the repository
    missing = [p for p in named if not (REPO_ROOT / p).exists() and not p.startswith(written_by_the_benchmark)]
    assert sorted(missing) == []
