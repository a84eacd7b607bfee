#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the dashboard's browser test, when it is missing and this
# machine can (root, or sudo without a password, and apt-get). Idempotent and quick when Chromium is there.
# Never fails the caller: without a browser the test skips and says why.
set -uo pipefail
BROWSER=/usr/bin/chromium
if [ -x "$BROWSER" ] || [ "${SKIP_BROWSER_INSTALL:-}" = 1 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: no apt-get here; the browser test will skip" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "setup-browser: not root and no passwordless sudo; the browser test will skip" >&2
  exit 0
fi
echo "setup-browser: installing chromium with apt-get (once)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium; } >/tmp/setup-browser.log 2>&1; then
  echo "setup-browser: apt-get could not install chromium (see /tmp/setup-browser.log); the browser test will skip" >&2
fi
exit 0
