#!/usr/bin/env bash
# Set up hall-kiosk on a fresh Debian 12 / Raspberry Pi OS bookworm machine:
# Debian packages (CJK font, GL/SDL runtime libs, zbar for ticket QR checks),
# a virtualenv in .venv, and the product installed into it (editable).
#   scripts/setup.sh          the product
#   scripts/setup.sh --test   the product and its test tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

# Debian packages: a Chinese font (Kivy's own has no CJK glyphs), the libraries
# Kivy's SDL2 wheel loads at run time, mtdev (quiets a Kivy warning), zbar to
# decode QR codes from rendered tickets, systemd-analyze to verify the unit,
# espeak-ng (the default voice pack) and alsa-utils (aplay plays it); gcc and the kernel headers
# build python-evdev (a test tool: its UInput drives the HID scanner test where /dev/uinput exists).
packages=(python3 python3-venv python3-dev fonts-wqy-microhei libmtdev1 zbar-tools espeak-ng alsa-utils
          libgl1 libegl1 libgles2 libgbm1 libgl1-mesa-dri systemd gcc linux-libc-dev)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "setup: Python 3.11 or newer is needed (Debian 12 / Pi OS bookworm have it)"; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
echo "setup: done (.venv)"
