#!/usr/bin/env bash
# One command for newcomers: set up, then run one sync against Azurite and local LeadPier/LE stand-ins.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m sandbox "$@"
