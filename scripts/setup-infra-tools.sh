#!/usr/bin/env bash
# Creates .venv-infra with the Bicep checking tools of requirements-infra.txt (checkov, pycep-parser).
# Idempotent and quick: reinstalls only when requirements-infra.txt changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv-infra/.requirements.sha256
want=$(sha256sum requirements-infra.txt | cut -d' ' -f1)
if [ -x .venv-infra/bin/checkov ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python3 -m venv .venv-infra
.venv-infra/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv-infra/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
echo "$want" > "$stamp"
