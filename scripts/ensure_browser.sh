#!/usr/bin/env bash
# The browser test (tests/browser) drives Debian's headless Chromium through chromedriver.
# Install both from apt when either is missing; fail loudly when that is not possible, so the
# test never silently skips.
set -euo pipefail
CHROMIUM=${HORIZON_CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${HORIZON_CHROMEDRIVER:-/usr/bin/chromedriver}
if [[ -x "$CHROMIUM" && -x "$CHROMEDRIVER" ]]; then
  exit 0
fi
echo "ensure_browser: $CHROMIUM or $CHROMEDRIVER is missing; installing chromium and chromium-driver with apt-get" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_browser: apt-get is not available; install Chromium and chromedriver at $CHROMIUM and $CHROMEDRIVER" >&2
  exit 1
fi
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    echo "ensure_browser: not root and no sudo; run: apt-get install chromium chromium-driver" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get -qq update >/dev/null \
  || ! "${SUDO[@]}" apt-get -qq install -y --no-install-recommends chromium chromium-driver >/dev/null; then
  echo "ensure_browser: apt-get could not install chromium and chromium-driver" >&2
  exit 1
fi
if [[ ! -x "$CHROMIUM" || ! -x "$CHROMEDRIVER" ]]; then
  echo "ensure_browser: apt-get finished but $CHROMIUM or $CHROMEDRIVER is still missing" >&2
  exit 1
fi
echo "ensure_browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)" >&2
