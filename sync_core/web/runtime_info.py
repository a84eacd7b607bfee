"""What the app runs on (Python, azure-functions, the worker) and whether that is what the deployment asked for."""

from __future__ import annotations

import functools
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Literal

from pydantic import BaseModel, Field

# The Functions worker's package on each Python: the worker itself brings it, the app never installs it.
WORKER_PACKAGES = (
    ("azure-functions-runtime", "azure_functions_runtime"),
    ("azure-functions-worker", "azure_functions_worker"),
)
# The first Python whose worker takes azure-functions 2.x; below it the 1.x line (requirements.in says the same).
FUNCTIONS_2_FROM = (3, 13)


class RuntimeCheck(BaseModel):
    status: Literal["ok", "warning"] = Field(
        description="warning when the Python or the azure-functions line is not the one the deployment needs"
    )
    detail: str
    python: str = Field(description="the interpreter's version, e.g. 3.13.1")
    python_asked: str | None = Field(None, description="SYNC_PYTHON_VERSION, the Python the deployment asked for")
    azure_functions: str | None = Field(None, description="the installed azure-functions version")
    worker: str | None = Field(None, description="the Functions worker's package and version; null outside the host")


@functools.cache  # a search of the installed packages' metadata (~20 ms); what is installed stays for the process
def _version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def worker_version() -> str | None:
    """The worker's package and version, from its metadata or, when the host puts it on the path without metadata,
    from the module the worker has already imported (never imported here)."""
    for distribution, module_name in WORKER_PACKAGES:
        version = _version_of(distribution)
        module = sys.modules.get(module_name)
        if version is None and module is not None:
            version = str(getattr(module, "__version__", "") or "") or None
        if version is not None:
            return f"{distribution} {version}"
    return None


def functions_line_for(python: tuple[int, int]) -> int:
    """The azure-functions major version a Python's worker needs."""
    return 2 if python >= FUNCTIONS_2_FROM else 1


def runtime_check(
    asked: str | None,
    *,
    python: str | None = None,
    azure_functions: str | None = None,
    worker: str | None = None,
) -> RuntimeCheck:
    """The check; the keyword arguments stand in for what is installed (for tests), else it is looked up."""
    python = python or platform.python_version()
    azure_functions = azure_functions if azure_functions is not None else _version_of("azure-functions")
    worker = worker if worker is not None else worker_version()
    major_minor = ".".join(python.split(".")[:2])
    problems: list[str] = []
    if asked and asked != major_minor:
        problems.append(
            f"the app runs on Python {major_minor} but the deployment asked for {asked} (SYNC_PYTHON_VERSION): "
            "its packages were built for another Python; redeploy once the plan's Python is right"
        )
    if azure_functions:
        wanted = functions_line_for((int(python.split(".")[0]), int(python.split(".")[1])))
        if azure_functions.split(".")[0] != str(wanted):
            problems.append(
                f"azure-functions {azure_functions} is installed, but Python {major_minor} takes the {wanted}.x line"
            )
    if problems:
        return RuntimeCheck(
            status="warning",
            detail="; ".join(problems),
            python=python,
            python_asked=asked,
            azure_functions=azure_functions,
            worker=worker,
        )
    detail = f"Python {python}" + (f", azure-functions {azure_functions}" if azure_functions else "")
    if asked:
        detail += f", as the deployment asked ({asked})"
    return RuntimeCheck(
        status="ok", detail=detail, python=python, python_asked=asked, azure_functions=azure_functions, worker=worker
    )


def asked_python(environ: Mapping[str, str]) -> str | None:
    """SYNC_PYTHON_VERSION as set, read directly so the check works when other settings are invalid."""
    value = (environ.get("SYNC_PYTHON_VERSION") or "").strip()
    return value or None
