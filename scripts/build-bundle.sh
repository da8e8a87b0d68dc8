#!/usr/bin/env bash
# Build the signed offline release bundle for one device platform.
#
#   scripts/build-bundle.sh --arch aarch64 --key release.key [--out dist]
#   scripts/build-bundle.sh --arch x86_64  --key release.key
#
# Needs the package index (on the build machine only); the device needs none.
# Every wheel is checked against requirements.lock (pip --require-hashes):
# regenerate the lock after a dependency change with
#   pip-compile --generate-hashes --allow-unsafe --strip-extras \
#       --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH="" KEY="" OUT=dist PY=3.11
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH="$2"; shift 2 ;;
        --key) KEY="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --python) PY="$2"; shift 2 ;;
        *) echo "build-bundle: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$ARCH" in
    aarch64|x86_64) ;;   # aarch64: Raspberry Pi OS bookworm 64-bit
    *) echo "build-bundle: --arch aarch64 or x86_64" >&2; exit 2 ;;
esac
# bookworm has glibc 2.36: every manylinux tag up to it runs there.
PLATFORMS=()
for tag in manylinux_2_36 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014; do
    PLATFORMS+=(--platform "${tag}_$ARCH")
done
[ -f "$KEY" ] || { echo "build-bundle: --key: the ed25519 signing key (make one: kiosk bundle keygen --out KEY)" >&2; exit 2; }
PYBIN="${PYBIN:-.venv/bin/python}"
VERSION="$("$PYBIN" -c 'import kiosk; print(kiosk.__version__)')"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/wheels" "$OUT"
cp requirements.lock "$WORK/requirements.lock"

# Source-only packages (pure Python): their sdist is checked against the lock,
# built into a wheel here, and that wheel's hash added to the bundle's lock.
SDIST_ONLY=(sqlitedict)
binary_only=()
for name in "${SDIST_ONLY[@]}"; do
    pin="$(grep -E "^$name==" requirements.lock | cut -d' ' -f1)"
    "$PYBIN" -m pip download -q --no-deps --no-binary :all: --require-hashes -d "$WORK/sdist" \
        -r <(sed -n "/^$name==/,/^[a-z]/p" requirements.lock | sed '$d')
    "$PYBIN" -m pip wheel -q --no-deps -w "$WORK/wheels" "$WORK"/sdist/"$name"-*
    hash="$("$PYBIN" -m pip hash "$WORK"/wheels/"$name"-*.whl | tail -n 1)"
    sed -i "s|^$pin \\\\|$pin \\\\\n    $hash \\\\|" "$WORK/requirements.lock"
    binary_only+=("$name")
done
# Everything else as binary wheels for the target platform and Python.
"$PYBIN" -m pip download -q --require-hashes --only-binary=:all: --no-deps \
    "${PLATFORMS[@]}" --python-version "$PY" --implementation cp -d "$WORK/wheels" \
    -r <(awk -v skip="^($(IFS='|'; echo "${binary_only[*]}"))==" '
        /^[a-z]/ { drop = ($0 ~ skip) } !drop' requirements.lock)
# pip itself, so a bare device needs no pip of its own to install the bundle.
"$PYBIN" -m pip download -q --only-binary=:all: --no-deps -d "$WORK/wheels" "pip>=24"
# The product.
"$PYBIN" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/wheels" .

"$PYBIN" -m kiosk bundle build --wheels "$WORK/wheels" --lock "$WORK/requirements.lock" --key "$KEY" \
    --out "$OUT" --version "$VERSION" --arch "$ARCH" --python "$PY"
