#!/usr/bin/env bash
# Debian's Chromium for the dashboard's real-browser test (idempotent; ~20 s the first time).
# Playwright drives it through executable_path, so no browser download is needed.
set -eo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"
else
  echo "tools/ensure_browser.sh: /usr/bin/chromium is missing and cannot be installed here;" \
       "install Debian's chromium package for the dashboard browser test" >&2
  exit 0
fi
echo "installing Debian's chromium (dashboard browser test)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || {
  $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
