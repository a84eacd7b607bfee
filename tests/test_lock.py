"""The lock: requirements.txt is generated from requirements.in for the deployed Python, pinned with hashes, current."""

from __future__ import annotations

import hashlib
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DEPLOYED = re.search(r"^DEPLOYED_PYTHON=(\S+)$", (ROOT / "scripts" / "lock.sh").read_text(), re.M)
DEPLOYED_PYTHON = DEPLOYED[1] if DEPLOYED else "?"
# The markers' environment of the deployment: Flex Consumption runs Linux x64.
DEPLOYED_MARKERS = {
    "python_version": DEPLOYED_PYTHON,
    "python_full_version": f"{DEPLOYED_PYTHON}.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def _input_requirements() -> list[Requirement]:
    lines = (ROOT / "requirements.in").read_text().splitlines()
    return [Requirement(line.split("#", 1)[0].strip()) for line in lines if line.split("#", 1)[0].strip()]


def _locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every pin in requirements.txt."""
    text = (ROOT / "requirements.txt").read_text()
    pins: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", block)
        if match:
            pins[canonicalize_name(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return pins


def test_the_lock_was_made_from_the_input_as_it_is_now() -> None:
    digest = hashlib.sha256((ROOT / "requirements.in").read_bytes()).hexdigest()
    header = re.search(r"^# requirements\.in sha256: ([0-9a-f]{64})$", (ROOT / "requirements.txt").read_text(), re.M)
    assert header, "requirements.txt has no input digest: regenerate it with scripts/lock.sh"
    assert header[1] == digest, "requirements.txt is stale (requirements.in changed since): run scripts/lock.sh"


def test_every_package_is_pinned_with_a_hash() -> None:
    pins = _locked()
    assert len(pins) > 20
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []


def test_every_input_requirement_is_met_by_a_pin_for_the_deployed_python() -> None:
    pins = _locked()
    for requirement in _input_requirements():
        if requirement.marker and not requirement.marker.evaluate(DEPLOYED_MARKERS):
            continue  # another Python's line (azure-functions 1.x below 3.13): that Python resolves it itself
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.txt: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"{requirement} is not met by the pin {pins[name][0]}: run scripts/lock.sh"
        )


@pytest.mark.skipif(
    f"{sys.version_info.major}.{sys.version_info.minor}" != DEPLOYED_PYTHON,
    reason="the lock is for the deployed Python; other Pythons resolve requirements.in themselves",
)
def test_the_tests_run_on_exactly_the_locked_versions() -> None:
    drift = {}
    for name, (version, _) in _locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a package the deployed platform needs and this machine's resolution did not
        if installed != version:
            drift[name] = (installed, version)
    assert drift == {}, "installed != locked: run scripts/setup.sh"
