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
echo "setup: installing checkov and pycep-parser into .venv-infra (half a minute the first time)..." >&2
python3 -m venv .venv-infra
for args in "--upgrade pip" "-r requirements-infra.txt"; do
  # shellcheck disable=SC2086  # two words each, on purpose
  .venv-infra/bin/python -m pip install --quiet --disable-pip-version-check $args 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; } >&2
  [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
done
echo "$want" > "$stamp"
