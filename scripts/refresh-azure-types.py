#!/usr/bin/env python3
"""Refreshes tests/infra/azure-types.json: Azure's own definitions of exactly the resource types and API versions
infra/ uses, extracted from the `types.json` files of a copy of the Azure/bicep-types-az repository.

    python3 scripts/refresh-azure-types.py PATH

PATH is a checkout of https://github.com/Azure/bicep-types-az (its `generated/` folder), or a bare clone of it (read
with git at HEAD). Standard library only. Each resource keeps only the types reachable from its body, renumbered,
so the file stays small and a diff shows what changed. Run it after changing an API version in infra/.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "tests" / "infra" / "azure-types.json"
RESOURCE = re.compile(r"""^\s*resource\s+\w+\s+'([\w.]+/[\w./]+)@([\w-]+)'""", re.M)


class Source:
    """The repository's files, from a checkout or a bare clone."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bare = not (path / "generated").is_dir()
        self.commit = self._git("rev-parse", "HEAD").strip() if self._is_git() else "unknown"

    def _is_git(self) -> bool:
        try:
            self._git("rev-parse", "HEAD")
            return True
        except subprocess.CalledProcessError:
            return False

    def _git(self, *args: str) -> str:
        where = ["--git-dir", str(self.path)] if self.bare else ["-C", str(self.path)]
        return subprocess.run(["git", *where, *args], capture_output=True, text=True, check=True).stdout

    def types_files(self, namespace: str, version: str) -> list[str]:
        pattern = re.compile(rf"^generated/[^/]+/{re.escape(namespace.lower())}/{re.escape(version)}/types\.json$")
        if self.bare:
            names = self._git("ls-tree", "-r", "--name-only", "HEAD", "generated/").splitlines()
        else:
            names = [str(p.relative_to(self.path)) for p in (self.path / "generated").glob("*/*/*/types.json")]
        return sorted(n for n in names if pattern.match(n))

    def read(self, name: str) -> list[dict]:
        text = self._git("show", f"HEAD:{name}") if self.bare else (self.path / name).read_text()
        return json.loads(text)


def used_resources() -> list[tuple[str, str]]:
    found = set()
    for path in (ROOT / "infra").rglob("*.bicep"):
        found |= set(RESOURCE.findall(path.read_text()))
    return sorted(found)


def _refs(node: object) -> list[int]:
    if isinstance(node, dict):
        if set(node) == {"$ref"} and isinstance(node["$ref"], str):
            return [int(node["$ref"].rsplit("/", 1)[1])]
        return [i for value in node.values() for i in _refs(value)]
    if isinstance(node, list):
        return [i for value in node for i in _refs(value)]
    return []


def _renumber(node: object, new: dict[int, int]) -> object:
    """References renumbered; descriptions dropped (the check needs names, nesting, flags and values only)."""
    if isinstance(node, dict):
        if set(node) == {"$ref"} and isinstance(node["$ref"], str):
            return {"$ref": f"#/{new[int(node['$ref'].rsplit('/', 1)[1])]}"}
        # (A property named "description" has an object as its value and stays.)
        return {
            key: _renumber(value, new)
            for key, value in node.items()
            if not (key == "description" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [_renumber(value, new) for value in node]
    return node


def extract(types: list[dict], resource: dict) -> dict:
    """The resource's body and every type it reaches, renumbered from 0 (the body)."""
    start = int(resource["body"]["$ref"].rsplit("/", 1)[1])
    order, seen, pending = [], set(), [start]
    while pending:
        index = pending.pop(0)
        if index in seen:
            continue
        seen.add(index)
        order.append(index)
        pending.extend(_refs(types[index]))
    new = {old: i for i, old in enumerate(order)}
    return {"types": [_renumber(types[old], new) for old in order]}


def _dump(out: dict[str, object]) -> str:
    """JSON with one type per line: small, and a refresh's diff names the types that changed."""
    lines = [
        "{",
        f' "source": {json.dumps(out["source"])},',
        f' "commit": {json.dumps(out["commit"])},',
        ' "resources": {',
    ]
    resources = out["resources"]
    assert isinstance(resources, dict)
    for n, (name, entry) in enumerate(resources.items()):
        lines.append(f"  {json.dumps(name)}: {{")
        lines.append(f'   "file": {json.dumps(entry["file"])},')
        lines.append('   "types": [')
        types = entry["types"]
        lines += [f"    {json.dumps(t)}{',' if i < len(types) - 1 else ''}" for i, t in enumerate(types)]
        lines.append("   ]")
        lines.append("  }" + ("," if n < len(resources) - 1 else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    source = Source(Path(argv[0]).resolve())
    out: dict[str, object] = {"source": "https://github.com/Azure/bicep-types-az", "commit": source.commit}
    resources: dict[str, object] = {}
    for type_name, version in used_resources():
        namespace = type_name.split("/")[0]
        wanted = f"{type_name}@{version}"
        for name in source.types_files(namespace, version):
            types = source.read(name)
            match = [t for t in types if t.get("$type") == "ResourceType" and t["name"].lower() == wanted.lower()]
            if match:
                resources[wanted] = {"file": name, **extract(types, match[0])}
                break
        else:
            print(f"refresh: {wanted} is in no types.json of {source.path}", file=sys.stderr)
            return 1
    out["resources"] = resources
    OUTPUT.write_text(_dump(out))
    print(f"refresh: {len(resources)} resource types written to {OUTPUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
