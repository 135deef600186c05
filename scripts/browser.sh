#!/usr/bin/env bash
# Chromium from the system's packages, for the browser tests of `rig view` (tests/test_view_browser.py, driven by
# Playwright from the dev extra, launched on this Chromium: nothing is downloaded at test time). Does nothing
# where Chromium is already installed. Without Chromium those tests fail; RIG_NO_BROWSER=1 skips them.
set -euo pipefail
CHROMIUM=${RIG_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  echo "chromium: $CHROMIUM"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here: install Chromium with your package manager (or set RIG_CHROMIUM to its path)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
echo "chromium: $CHROMIUM"
