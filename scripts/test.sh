#!/usr/bin/env bash
# The whole test suite: sets up, then runs pytest on two workers (each starts its own Azurite on free ports).
# Chromium for the dashboard's browser test comes from Debian's package (once; the test skips where it cannot).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-browser.sh
exec .venv/bin/python -m pytest -n 2 "$@"
