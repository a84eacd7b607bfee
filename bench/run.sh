#!/usr/bin/env bash
# The performance benchmark in one command: sets up, then `python -m bench` (installs bench/requirements.txt
# into .venv when missing). Arguments go to it: bench/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m bench "$@"
