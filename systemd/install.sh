#!/bin/bash
# Install the hall kiosk from this checkout on Raspberry Pi OS bookworm (64-bit).
#
#   sudo systemd/install.sh --role dispenser --printer-id 1a86:7523 [--printer-serial SERIAL] [--idcard-id 067b:2303]
#   sudo systemd/install.sh --role lookup --scanner-id 1eab:1d06
#   sudo systemd/install.sh --role pad
#   systemd/install.sh --dry-run ...        (print what would be done, change nothing)
#
# Safe to run again (an update): it never overwrites /etc/kiosk/kiosk.toml,
# the token or the data in /var/lib/kiosk.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/opt/kiosk
ETC=/etc/kiosk
STATE=/var/lib/kiosk
USER_NAME=kiosk
ROLE=""
PRINTER_ID=""
SCANNER_ID=""
IDCARD_ID=""
PRINTER_SERIAL=""
DRY=0

APT_PACKAGES=(
    python3 python3-venv python3-pip
    python3-gpiozero python3-lgpio          # GPIO through Pi OS's own packages (venv uses system site-packages)
    libgles2 libegl1 libgbm1 libgl1-mesa-dri   # KMS/DRM drawing; missing on Pi OS Lite
    espeak-ng alsa-utils                    # the default voice pack is made with espeak-ng; aplay plays it
    libmtdev1                               # silences a harmless Kivy traceback at start
    fonts-wqy-microhei                      # Chinese font, face 0 = Simplified
    rsync
)

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "==> $*"; }
run() {
    if [ "$DRY" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --role) ROLE="${2:-}"; shift 2 ;;
        --printer-id) PRINTER_ID="${2:-}"; shift 2 ;;
        --scanner-id) SCANNER_ID="${2:-}"; shift 2 ;;
        --idcard-id) IDCARD_ID="${2:-}"; shift 2 ;;
        --printer-serial) PRINTER_SERIAL="${2:-}"; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option: $1" >&2; usage 2 ;;
    esac
done

case "$ROLE" in
    dispenser|lookup|pad) ;;
    "") die "give --role dispenser|lookup|pad (picks the example config for /etc/kiosk/kiosk.toml)" ;;
    *) die "--role $ROLE: use dispenser, lookup or pad" ;;
esac
[ -z "$PRINTER_SERIAL" ] || [[ "$PRINTER_SERIAL" =~ ^[A-Za-z0-9._-]{1,64}$ ]] ||
    die "--printer-serial '$PRINTER_SERIAL': give the printer's USB serial as udevadm info shows it (letters, digits, . _ -)"
for id in "$PRINTER_ID" "$SCANNER_ID"; do
    [ -z "$id" ] || [[ "$id" =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$ ]] ||
        die "USB id '$id' has the wrong form: write vendor:product like 1a86:7523 (see: lsusb)"
done
[ -f "$SRC/pyproject.toml" ] && [ -f "$SRC/systemd/kiosk.service" ] || die "run me from a checkout ($SRC is not one)"
if [ "$DRY" = 0 ]; then
    [ "$(id -u)" = 0 ] || die "run as root: sudo $0 $*"
    if ! grep -q 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
        echo "install.sh: warning: this is not Debian/Raspberry Pi OS bookworm; continuing" >&2
    fi
fi

say "system packages"
run apt-get update
run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"

say "user $USER_NAME"
getent group gpio >/dev/null || run groupadd --system gpio
if ! id "$USER_NAME" >/dev/null 2>&1; then
    run useradd --system --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin \
        --user-group "$USER_NAME"
fi
run usermod -a -G video,render,input,dialout,lp,gpio "$USER_NAME"

say "software in $PREFIX"
run mkdir -p "$PREFIX"
run rsync -a --delete --exclude .git --exclude '__pycache__' --exclude '*-data' "$SRC/" "$PREFIX/src/"
# --system-site-packages: gpiozero and lgpio come from Pi OS (PyPI lgpio needs a compiler).
[ -x "$PREFIX/venv/bin/python" ] || run python3 -m venv --system-site-packages "$PREFIX/venv"
run "$PREFIX/venv/bin/pip" install --upgrade --no-cache-dir "$PREFIX/src"
# The unit runs /opt/hall-kiosk/current/venv/bin/kiosk: a checkout install is that
# "current" until the first bundle (kiosk update --from) installs side by side.
run mkdir -p /opt/hall-kiosk
[ -e /opt/hall-kiosk/current ] || run ln -sfn "$PREFIX" /opt/hall-kiosk/current

say "configuration in $ETC"
run install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
if [ ! -e "$ETC/kiosk.toml" ]; then
    run install -m 0640 -o root -g "$USER_NAME" "$SRC/config/$ROLE.toml" "$ETC/kiosk.toml"
    echo "    $ETC/kiosk.toml made from config/$ROLE.toml: set [device] id and hall, and the PIN (kiosk hash-pin)"
else
    echo "    $ETC/kiosk.toml exists: left as it is"
fi
if [ ! -e "$ETC/token" ]; then
    # Empty until the technician puts the device token in; only the app may read it.
    run install -m 0600 -o "$USER_NAME" -g "$USER_NAME" /dev/null "$ETC/token"
    echo "    $ETC/token made empty (mode 0600): put the device token in it"
else
    run chown "$USER_NAME:$USER_NAME" "$ETC/token"
    run chmod 0600 "$ETC/token"
fi
run install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$STATE"
# The spoken prompts: made once, kept on update (a hall may have put its own recordings there).
if [ ! -f "$STATE/voice/manifest.json" ]; then
    run runuser -u "$USER_NAME" -- "$PREFIX/venv/bin/kiosk" voice-pack --out "$STATE/voice"
fi

say "udev rule and systemd unit"
RULE_TMP="$(mktemp)"
trap 'rm -f "$RULE_TMP"' EXIT
cp "$SRC/systemd/99-kiosk.rules" "$RULE_TMP"
set_ids() {  # set_ids NAME VVVV:PPPP: rewrite the ids on the line that makes /dev/NAME
    local name="$1" vendor="${2%%:*}" product="${2##*:}"
    sed -i -E "/SYMLINK\+=\"$name\"/ s/ATTRS\{idVendor\}==\"[0-9a-fA-F]{4}\"/ATTRS{idVendor}==\"${vendor,,}\"/; \
/SYMLINK\+=\"$name\"/ s/ATTRS\{idProduct\}==\"[0-9a-fA-F]{4}\"/ATTRS{idProduct}==\"${product,,}\"/" "$RULE_TMP"
}
[ -z "$PRINTER_ID" ] || set_ids kiosk-printer "$PRINTER_ID"
[ -z "$SCANNER_ID" ] || set_ids kiosk-scanner "$SCANNER_ID"
[ -z "$IDCARD_ID" ] || set_ids kiosk-idcard "$IDCARD_ID"
if [ -n "$PRINTER_SERIAL" ]; then
    sed -i -E "/SYMLINK\+=\"kiosk-printer\"/ s/(ATTRS\{idProduct\}==\"[0-9a-f]{4}\")/\1, ATTRS{serial}==\"$PRINTER_SERIAL\"/" "$RULE_TMP"
fi
if [ "$DRY" = 1 ]; then
    grep -E '^SUBSYSTEM' "$RULE_TMP" | sed 's/^/    rule: /'
fi
run install -m 0644 "$RULE_TMP" /etc/udev/rules.d/99-kiosk.rules
run install -m 0644 "$SRC/systemd/kiosk.service" /etc/systemd/system/kiosk.service
run install -m 0644 "$SRC/systemd/kiosk-update.service" /etc/systemd/system/kiosk-update.service
run install -m 0644 "$SRC/systemd/kiosk-update.timer" /etc/systemd/system/kiosk-update.timer
# Keep the journal from filling the SD card.
run install -d /etc/systemd/journald.conf.d
if [ "$DRY" = 1 ]; then
    echo "+ write /etc/systemd/journald.conf.d/kiosk.conf (SystemMaxUse=200M)"
else
    printf '[Journal]\nSystemMaxUse=200M\n' > /etc/systemd/journald.conf.d/kiosk.conf
fi
run udevadm control --reload
run udevadm trigger --subsystem-match=tty

say "boot straight into the kiosk"
# No desktop may hold the display: text boot, display manager off, tty1 ours.
run systemctl set-default multi-user.target
for dm in lightdm gdm3 sddm; do
    if systemctl list-unit-files "$dm.service" 2>/dev/null | grep -q "^$dm.service"; then
        run systemctl disable "$dm.service"
        run systemctl mask "$dm.service"
    fi
done
run systemctl daemon-reload
run systemctl restart systemd-journald
run systemctl enable kiosk.service
run systemctl enable kiosk-update.timer

cat <<DONE

Installed. Next:
  1. put the device token:      sudo nano $ETC/token
  2. edit the config:           sudo nano $ETC/kiosk.toml   (device id, hall, PIN hash from: $PREFIX/venv/bin/kiosk hash-pin)
  3. check it:                  sudo -u $USER_NAME $PREFIX/venv/bin/kiosk selftest --config $ETC/kiosk.toml
  4. start:                     sudo systemctl start kiosk   (or reboot)
  logs:                         journalctl -u kiosk -f
DONE
