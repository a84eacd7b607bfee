"""The deployment package: built as Core Tools builds it (the project folder less .funcignore's patterns), installed
into a clean virtual environment from the lock, then loaded and invoked from there through azure-functions-runtime.
Nothing the app needs is left out; nothing of the tests, the sandbox or the tools is shipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pathspec
import pytest

pytest.importorskip("azure_functions_runtime", reason="azure-functions-runtime (the worker's package) needs 3.13")

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_TOP_LEVEL = {"function_app.py", "host.json", "requirements.txt", "sync_core"}
HARNESS = ("tests/runtime/worker.py", "tests/runtime/protos_standin.py")
PIP_TIMEOUT_S = 900


def package_files(root: Path = ROOT) -> list[str]:
    """The files Core Tools puts in the package: every file under the project folder that .funcignore (gitignore
    syntax) does not exclude, an excluded folder not entered."""
    spec = pathspec.GitIgnoreSpec.from_lines((root / ".funcignore").read_text().splitlines())
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{(here / d).as_posix()}/"))
        found += [(here / f).as_posix() for f in sorted(files) if not spec.match_file((here / f).as_posix())]
    return found


def build_package(destination: Path) -> Path:
    archive = destination / "app.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as package:
        for name in package_files():
            package.write(ROOT / name, name)
    return archive


def test_the_package_holds_the_app_and_nothing_of_the_tests() -> None:
    files = package_files()
    assert {name.split("/")[0] for name in files} == SHIPPED_TOP_LEVEL
    assert "sync_core/__init__.py" in files and "sync_core/web/health.py" in files
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in files if Path(name).name.startswith("test_") or "conftest" in name]


def test_every_module_the_app_imports_is_shipped() -> None:
    """Every sync_core module in the repository is in the package (a new module is not left behind by a pattern)."""
    shipped = set(package_files())
    assert {p.relative_to(ROOT).as_posix() for p in (ROOT / "sync_core").rglob("*.py")} <= shipped


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the package unpacked as the platform unpacks it, a clean venv with the lock installed, hashes checked)."""
    work = tmp_path_factory.mktemp("package")
    app = work / "app"
    with zipfile.ZipFile(build_package(work)) as package:
        package.extractall(app)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # What the remote build runs: the package's own requirements.txt, every hash checked.
    subprocess.run([*pip, "--require-hashes", "-r", str(app / "requirements.txt")], check=True, timeout=PIP_TIMEOUT_S)
    # The worker is the platform's, not the app's: the version this machine's tests run.
    runtime = f"azure-functions-runtime=={metadata.version('azure-functions-runtime')}"
    subprocess.run([*pip, runtime], check=True, timeout=PIP_TIMEOUT_S)
    yield app, python


def test_the_lock_installs_into_a_clean_environment_and_holds_together(installed: tuple[Path, Path]) -> None:
    _, python = installed
    done = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


DRIVER = textwrap.dedent(
    """
    import json, sys
    from azure_functions_runtime import start_threadpool_executor
    from tests.runtime.worker import Host, start_worker

    app_dir = sys.argv[1]
    start = start_worker(__import__("pathlib").Path(app_dir))
    out = {"ok": start.ok, "failure": start.failure, "functions": sorted(m.name for m in start.metadata)}
    if start.ok:
        start_threadpool_executor()
        host = Host(start)
        out["info"] = host.get("service_info", "/").status_code
        out["openapi"] = host.get("openapi", "/openapi.json").status_code
        health = host.get("health", "/health")
        out["health"] = [health.status_code, health.json()["checks"]["storage"]["status"], health.json()["checks"]["runtime"]]
        out["timer"] = [host.fire_timer(None).ok]
        trigger = host.post_trigger()
        out["trigger"] = trigger.http.status_code
        out["worker"] = [host.deliver(m).ok for m in trigger.queue_messages("queued_runs")]
        runs = host.get("runs", "/runs").json()["runs"]
        out["runs"] = sorted((r["trigger"], r["status"]) for r in runs)
        out["modules"] = sorted(
            m.__file__ for name, m in sys.modules.items()
            if name.split(".")[0] in ("sync_core", "function_app") and getattr(m, "__file__", None)
        )
    print(json.dumps(out))
    """
)


def test_the_app_loads_and_runs_from_the_package_through_the_worker(
    installed: tuple[Path, Path], sync_env: dict[str, str], tmp_path: Path
) -> None:
    app, python = installed
    harness = tmp_path / "harness"
    for name in HARNESS:
        (harness / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, harness / name)
    (harness / "tests" / "__init__.py").touch()
    (harness / "tests" / "runtime" / "__init__.py").touch()
    (harness / "drive.py").write_text(DRIVER)
    environ = {**os.environ, "PYTHONPATH": str(harness), "SYNC_PYTHON_VERSION": "3.13"}
    environ.pop("PYTHONHOME", None)
    # In the package's folder, as the host runs the worker: only what the package holds can be imported from there.
    done = subprocess.run(
        [str(python), str(harness / "drive.py"), str(app)],
        cwd=app,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["ok"], shown["failure"]
    assert len(shown["functions"]) == 12
    assert (shown["info"], shown["openapi"]) == (200, 200)
    assert shown["health"][:2] == [200, "ok"]
    assert shown["health"][2]["status"] == "ok" and shown["health"][2]["python_asked"] == "3.13"
    assert shown["timer"] == [True] and shown["trigger"] == 202 and shown["worker"] == [True]
    assert shown["runs"] == [["manual", "success"], ["timer", "success"]]
    assert shown["modules"] and all(path.startswith(str(app)) for path in shown["modules"])
