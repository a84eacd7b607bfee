#!/usr/bin/env bash
# Creates the Python environment with the app's and the tests' packages, and installs Azurite from npm. Idempotent, and
# quick when nothing changed: pip runs only when the requirements differ from the last install.
#
# One environment per Python version, .venvs/<major.minor>, and .venv a symlink to the one in use: every `.venv/bin/...`
# path keeps working, and a shell that finds another Python switches the link instead of rebuilding. With $VENV set,
# that folder is used as it is (no link). An older checkout's .venv folder is moved into .venvs/ and kept.
#
# The interpreter, in this order: $PYTHON when set; else Python 3.13 (what Azure runs: `python3.13` on the PATH, or
# pyenv's 3.13); else `python3` when it is 3.11 or newer. Older interpreters are refused with one line.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }

version_of() { "$@" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

# Prints "<path>|<why>" for the first candidate that runs; a pyenv shim of a version that is not active fails to run,
# so every candidate is tried, not just looked up.
choose_python() {
  if [ -n "${PYTHON:-}" ]; then
    echo "$PYTHON|from \$PYTHON"; return
  fi
  local candidate
  if candidate=$(command -v python3.13) && [ "$(version_of "$candidate")" = "3.13" ]; then
    echo "$candidate|Python 3.13 on the PATH"; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    local v
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | sort -V | tail -1 || true)
    candidate="$(pyenv root 2>/dev/null)/versions/$v/bin/python3"
    if [ -n "$v" ] && [ "$(version_of "$candidate")" = "3.13" ]; then
      echo "$candidate|pyenv's Python $v"; return
    fi
  fi
  echo "$(command -v python3 || echo python3)|python3 on the PATH"
}

choice=$(choose_python)
python=${choice%%|*}
why=${choice#*|}
version=$(version_of "$python" || true)
if [ -z "$version" ]; then
  say "no usable Python found ($python, $why): install Python 3.13 (or 3.11 or newer), or set PYTHON=/path/to/python3"
  exit 1
fi
case "$version" in
  3.1[1-9]) ;;
  *) say "Python $version is too old ($python, $why): LeadPier Sync needs 3.11 or newer (3.13 recommended); set PYTHON=/path/to/python3.13"
     exit 1 ;;
esac

if [ -n "${VENV:-}" ]; then
  venv=$VENV link=""
else
  venv=.venvs/$version link=.venv
  # A .venv folder from before: keep it as the environment of its own Python (paths through .venv stay valid).
  if [ -d .venv ] && [ ! -L .venv ]; then
    old=$(version_of .venv/bin/python || true)
    if [ -n "$old" ] && [ ! -e ".venvs/$old" ]; then
      mkdir -p .venvs && mv .venv ".venvs/$old"
      say "moved the Python $old environment from .venv to .venvs/$old"
    else
      rm -rf .venv
    fi
  fi
fi
say "Python $version: $python ($why) -> $venv${link:+ (linked as $link)}"

# Rebuild an environment that was made with another Python (a $VENV folder reused across interpreters).
if [ -x "$venv/bin/python" ] && [ "$(version_of "$venv/bin/python" || true)" != "$version" ]; then
  say "replacing $venv (Python $(version_of "$venv/bin/python" || echo '?')) with one on Python $version"
  rm -rf "$venv"
fi

# pip, minus the warnings some machines' pip configuration prints for every package (missing local mirrors).
pip_install() {
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; } >&2
  return "${PIPESTATUS[0]}"
}

stamp=$venv/.installed
wanted="python $version; $(cat requirements.in requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  mkdir -p "$(dirname "$venv")"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  say "installing the app's and the tests' packages into $venv (a minute the first time)..."
  pip_install --upgrade pip
  if [ "$version" = "$(sed -n 's/^DEPLOYED_PYTHON=//p' scripts/lock.sh)" ]; then
    # The Python the app is deployed on: exactly the lock, hashes checked, as the deployment installs it; the tests'
    # packages then go on top without moving a pin (the lock's versions, without hashes, as constraints).
    pip_install --require-hashes -r requirements.txt
    pins=$(mktemp)
    grep -E '^[A-Za-z0-9][A-Za-z0-9._-]*==' requirements.txt | sed 's/[[:space:]]*\\$//' > "$pins"
    pip_install -r requirements-dev.txt -c "$pins"
    rm -f "$pins"
  else
    # Another Python (3.11, 3.12): the lock is for the deployed one, so this one resolves the input on its own.
    pip_install -r requirements-dev.txt
  fi
  echo "$wanted" > "$stamp"
  say "packages ready"
fi
if [ -n "$link" ] && [ "$(readlink "$link" 2>/dev/null || true)" != "$venv" ]; then
  ln -sfn "$venv" "$link"
  say "$link -> $venv"
fi

if [ ! -x node_modules/.bin/azurite ]; then
  command -v npm >/dev/null 2>&1 || { say "npm is needed to install Azurite (the storage emulator)"; exit 1; }
  say "installing Azurite from npm..."
  npm ci --no-audit --no-fund --loglevel=error
fi
