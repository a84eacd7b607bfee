"""Run by .venv-infra's Python (not the app's): prints the pycep-parser parse of Bicep files, or a YAML file, as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    kind, paths = argv[0], [Path(p) for p in argv[1:]]
    if kind == "bicep":
        from pycep import BicepParser

        parser = BicepParser()
        out = {str(p): parser.parse(file_path=p) for p in paths}
    elif kind == "yaml":
        import yaml

        out = {str(p): yaml.safe_load(p.read_text(encoding="utf-8")) for p in paths}
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
