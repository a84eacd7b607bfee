#!/usr/bin/env bash
# The whole test suite: sets up, then runs pytest on two workers (each starts its own Azurite on free ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-infra-tools.sh   # checkov and pycep-parser for tests/infra, in their own venv
exec .venv/bin/python -m pytest -n 2 "$@"
