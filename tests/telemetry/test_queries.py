"""Every KQL query in docs/OPERATIONS.md, the alert and the workbook names only tables, item names and dimensions
that a real run sends, in one form (the Application Insights resource's tables or the workspace's); the failed-run
alert reads each row once however late it arrives; and the Bicep modules parse."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from sandbox.upstream import FakeLE, FakeLeadPier
from tests.infra.conftest import run_tools_parse
from tests.telemetry.conftest import REPO, run_cli
from tests.telemetry.ingestion import FakeIngestion, base_data, dimensions, table_of

DAY = "2026-02-13"
TABLES = (
    "requests",
    "dependencies",
    "traces",
    "exceptions",
    "customMetrics",
    "customEvents",
    "availabilityResults",
    "pageViews",
    "performanceCounters",
)
# The Log Analytics workspace's name of each Application Insights table.
WORKSPACE_TABLES = {
    "AppRequests": "requests",
    "AppDependencies": "dependencies",
    "AppTraces": "traces",
    "AppExceptions": "exceptions",
    "AppMetrics": "customMetrics",
    "AppEvents": "customEvents",
    "AppAvailabilityResults": "availabilityResults",
    "AppPageViews": "pageViews",
    "AppPerformanceCounters": "performanceCounters",
}
# Filled by the Functions host (its invocations), not by the app: a query may read it (with no name or dimension).
HOST_TABLES = {"requests"}
OPERATIONS = REPO / "docs" / "OPERATIONS.md"
BICEP = {
    "alerts": REPO / "infra" / "modules" / "alerts.bicep",
    "workbook": REPO / "infra" / "modules" / "workbook.bicep",
}


def doc_queries() -> list[str]:
    return re.findall(r"```kusto\n(.*?)```", OPERATIONS.read_text(encoding="utf-8"), flags=re.S)


def parsed_bicep(module: str) -> dict[str, Any]:
    """The module as pycep-parser reads it (in the infra tools venv, beside checkov)."""
    return run_tools_parse("bicep", [BICEP[module]])[str(BICEP[module].relative_to(REPO))]


def bicep_queries(module: str) -> list[str]:
    variables = parsed_bicep(module)["variables"]
    return [v["value"] for name, v in variables.items() if name.endswith("Query")]


def used_names(query: str) -> dict[str, set[str]]:
    """The tables (workspace tables under their Application Insights names), item names (`name == "x"`,
    `name in ("x", "y")`, or `Name`) and customDimensions (or Properties) keys a query uses."""
    names = set(re.findall(r'\b[Nn]ame\s*==\s*"([^"]+)"', query))
    for listed in re.findall(r"\b[Nn]ame\s+in\s*\(([^)]*)\)", query):
        names.update(re.findall(r'"([^"]+)"', listed))
    keys = set(re.findall(r'(?:customDimensions|Properties)\[\s*"([^"]+)"\s*\]', query))
    keys.update(re.findall(r"(?:customDimensions|Properties)\.([A-Za-z_]\w*)", query))
    tables = {t for t in TABLES if re.search(rf"\b{t}\b", query)}
    tables.update(name for ws, name in WORKSPACE_TABLES.items() if re.search(rf"\b{ws}\b", query))
    return {"tables": tables, "names": names, "keys": keys}


def form(query: str) -> str:
    """`app insights`, `workspace`, or `mixed` (a query that would fail in both places)."""
    classic = any(re.search(rf"\b{t}\b", query) for t in TABLES) or re.search(
        r"\b(customDimensions|timestamp|operation_Id|operation_ParentId)\b", query
    )
    workspace = any(re.search(rf"\b{t}\b", query) for t in WORKSPACE_TABLES) or re.search(
        r"\b(Properties|TimeGenerated|OperationId|ParentId)\b", query
    )
    return "mixed" if classic and workspace else "workspace" if workspace else "app insights"


def sent_names(ingestion: FakeIngestion) -> dict[str, dict[str, set[str]]]:
    """Per table: the item names (metric names for customMetrics) and the customDimensions keys received."""
    seen: dict[str, dict[str, set[str]]] = {}
    for item in ingestion.items():
        entry = seen.setdefault(table_of(item), {"names": set(), "keys": set()})
        data = base_data(item)
        entry["names"].update([m["name"] for m in data.get("metrics", [])] or [data.get("name", "")])
        entry["keys"].update(dimensions(item))
    return seen


@pytest.fixture
def sent(
    sync_env: dict[str, str],
    leadpier: FakeLeadPier,
    le: FakeLE,
    ingestion: FakeIngestion,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, dict[str, set[str]]]:
    """A good run over three pages with codes LE does not match, then a run whose LE PUT is refused."""
    leadpier.set_rows(
        DAY,
        [{"source": f"mta_0213-{code}-e1", "visitors": 3} for code in ("lbe", "ivr", "xyz", "afw")]
        + [{"source": "organic-x", "visitors": 2}],
    )
    monkeypatch.setenv("LEADPIER_PAGE_SIZE", "2")
    assert run_cli("sync", "--date", DAY, ingestion_url=ingestion.url).record["status"] == "success"
    le.faults.add("put", status=400, body={"error": "bad request"})
    assert run_cli("sync", "--date", DAY, ingestion_url=ingestion.url).record["status"] == "failed"
    return sent_names(ingestion)


def test_the_queries_are_found() -> None:
    assert len(doc_queries()) >= 18
    assert len(bicep_queries("alerts")) == 2 and len(bicep_queries("workbook")) == 4
    for query in [*doc_queries(), *bicep_queries("alerts"), *bicep_queries("workbook")]:
        assert used_names(query)["tables"], query


def test_each_query_is_in_one_form_and_each_documented_one_in_both() -> None:
    assert [
        q for q in [*doc_queries(), *bicep_queries("alerts"), *bicep_queries("workbook")] if form(q) == "mixed"
    ] == []
    assert {form(q) for q in [*bicep_queries("alerts"), *bicep_queries("workbook")]} == {"app insights"}
    forms = [form(q) for q in doc_queries()]
    assert forms.count("app insights") == forms.count("workspace")
    assert [used_names(q) for q in doc_queries() if form(q) == "app insights"] == [
        used_names(q) for q in doc_queries() if form(q) == "workspace"
    ]  # the same tables, items and dimensions, question by question


def test_the_documented_alert_queries_are_the_rules_queries() -> None:
    documented = [q.strip() for q in doc_queries()]
    for query in bicep_queries("alerts"):
        assert query.strip() in documented


def iso_minutes(duration: str) -> int:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?", duration)
    assert match, duration
    return int(match[1] or 0) * 60 + int(match[2] or 0)


def test_the_failed_run_alert_reads_every_row_once_however_late() -> None:
    variables = parsed_bicep("alerts")["variables"]
    frequency = iso_minutes(variables["failedRunFrequency"]["value"])
    window = iso_minutes(variables["failedRunWindow"]["value"])
    query = variables["failedRunQuery"]["value"]
    # Consecutive evaluations read consecutive slots of ingestion time, as long as the frequency.
    slot = re.search(r"let slot_end = bin\(now\(\) - (\d+)m, (\d+)m\);", query)
    assert slot and int(slot[2]) == frequency, query
    assert f"ingestion_time() >= slot_end - {frequency}m and ingestion_time() < slot_end" in query
    # The window bounds `timestamp`, the run's start: the slot, the wait, the longest run (the function timeout),
    # and at least twice an ingestion delay as long as the frequency.
    timeout = json.loads((REPO / "host.json").read_text())["functionTimeout"]
    longest_run = int(timeout.split(":")[0]) * 60 + int(timeout.split(":")[1])
    assert window >= frequency + int(slot[1]) + longest_run + 2 * frequency
    assert "by run_id = " in query  # one row per failed run


def test_every_query_uses_only_what_a_run_sends(sent: dict[str, dict[str, set[str]]]) -> None:
    problems = []
    for where, queries in (
        ("docs/OPERATIONS.md", doc_queries()),
        ("alerts.bicep", bicep_queries("alerts")),
        ("workbook.bicep", bicep_queries("workbook")),
    ):
        for query in queries:
            used = used_names(query)
            missing_tables = used["tables"] - set(sent) - HOST_TABLES
            known_names = set().union(*(sent.get(t, {}).get("names", set()) for t in used["tables"]))
            known_keys = set().union(*(sent.get(t, {}).get("keys", set()) for t in used["tables"]))
            for kind, missing in (
                ("table", missing_tables),
                ("name", used["names"] - known_names),
                ("dimension", used["keys"] - known_keys),
            ):
                if missing:
                    problems.append(f"{where}: {kind} {sorted(missing)} not sent, in:\n{query}")
    assert not problems, "\n".join(problems)


def test_the_alert_fires_on_a_failed_run_or_a_stale_success_and_mails_the_parameter() -> None:
    parsed: dict[str, Any] = parsed_bicep("alerts")
    assert {"appInsightsId", "alertEmail", "staleAfterMinutes"} <= set(parsed["parameters"])
    assert parsed["parameters"]["staleAfterMinutes"]["default"] == 30
    assert set(parsed["resources"]) == {"actionGroup", "runFailed", "noSuccess"}
    text = BICEP["alerts"].read_text(encoding="utf-8")
    assert "emailAddress: alertEmail" in text and "windowSize: 'PT${staleAfterMinutes}M'" in text
    assert "br/public:" not in text and "br/public:" not in BICEP["workbook"].read_text(encoding="utf-8")


def test_the_workbook_parses_and_takes_the_application_insights_id() -> None:
    parsed: dict[str, Any] = parsed_bicep("workbook")
    assert "appInsightsId" in parsed["parameters"] and set(parsed["resources"]) == {"workbook"}


def test_used_names_reads_tables_names_and_dimensions() -> None:
    used = used_names(
        'requests | where name == "a" and tostring(customDimensions["sync.x"]) == "1"\n'
        '| join (traces | where name in ("b", "c") and customDimensions.run_id == "r") on operation_Id'
    )
    assert used == {"tables": {"requests", "traces"}, "names": {"a", "b", "c"}, "keys": {"sync.x", "run_id"}}


def test_a_name_the_run_does_not_send_is_caught(sent: dict[str, dict[str, set[str]]]) -> None:
    used = used_names('dependencies | where name == "leadpier_sync.runn" | where customDimensions["sync.stat"] == "x"')
    assert used["names"] - sent["dependencies"]["names"] == {"leadpier_sync.runn"}
    assert used["keys"] - sent["dependencies"]["keys"] == {"sync.stat"}
    assert "requests" not in sent  # the app sends no request: the host's invocation is the request
