#!/usr/bin/env bash
# The whole test suite: sets up, then runs pytest on two workers (each starts its own Azurite on free ports) with the
# interpreter setup.sh chose (Python 3.13 where there is one). Then, when the suite ran on 3.13 and a 3.11 is at hand,
# a fast subset on 3.11 too, so the "3.11 or newer" promise stays true. Arguments go to the main pytest run only
# (and skip the 3.11 subset), e.g. scripts/test.sh tests/test_api.py -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/lock.sh --check   # the deployment installs requirements.txt: it must be generated from requirements.in as it is
scripts/setup.sh
echo "== ruff check ==" >&2
.venv/bin/ruff check .
echo "== ruff format --check ==" >&2
.venv/bin/ruff format --check .
echo "== mypy ==" >&2
.venv/bin/mypy
echo "== import-linter (the layers in pyproject.toml) ==" >&2
.venv/bin/lint-imports
scripts/setup-infra-tools.sh   # checkov and pycep-parser for tests/infra, in their own venv
scripts/setup-browser.sh       # Debian's chromium for the dashboard's browser test (once; the test skips where it cannot)
.venv/bin/python -m pytest -n 2 "$@"

# On Python 3.11 the app takes azure-functions 1.x: the import, the functions, one run, the CLI and the API.
SUBSET_311=(tests/test_function_app.py tests/test_cli.py tests/test_api.py tests/test_settings.py tests/test_ncrontab.py)
main_version=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$#" -eq 0 ] && [ "$main_version" != "3.11" ]; then
  py311=""
  if command -v python3.11 >/dev/null 2>&1 && python3.11 -c '' 2>/dev/null; then
    py311=$(command -v python3.11)
  elif command -v pyenv >/dev/null 2>&1; then
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.11(\.[0-9]+)?$' | sort -V | tail -1 || true)
    [ -n "$v" ] && py311="$(pyenv root)/versions/$v/bin/python3"
  fi
  if [ -n "$py311" ]; then
    echo "== the Python 3.11 subset (azure-functions 1.x) ==" >&2
    PYTHON="$py311" VENV=.venvs/3.11 scripts/setup.sh   # beside .venv, which stays on the main interpreter
    .venvs/3.11/bin/python -m pytest -n 2 -q "${SUBSET_311[@]}"
  else
    echo "== no Python 3.11 here: the 3.11 subset is skipped ==" >&2
  fi
fi
