#!/bin/sh
# deploy/install.sh in a fresh Debian bookworm (debootstrap chroot), as on a new Pi:
#
#   scripts/check_install_chroot.sh dist/itemrec-0.1.0-py3-none-any.whl     (as root)
#
# Bootstraps build/install-chroot (minbase + systemd + python3-venv), runs install.sh twice
# (it must be repeatable) with the test fixtures' model and a gallery built from them, and
# checks: the system user in group video, /var/lib/itemrec with its files and modes, the
# unit installed and enabled, `systemd-analyze verify` of the unit as shipped, and the
# service's own command run as the itemrec user on a video file. Then a window kiosk user.
# systemd is not PID 1 in a chroot: `systemctl daemon-reload` and `start` cannot run here
# (install.sh skips them and says so); `systemctl enable` works on the files.
# Needs root, the Debian archive and the Python package index. Mounts live in a private
# mount namespace (unshare), so nothing stays mounted.
set -eu

WHEEL=$(realpath "${1:?usage: $0 dist/itemrec-VERSION-py3-none-any.whl}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT="$REPO/build/install-chroot"
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }
command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null

t0=$(date +%s)
# Never delete through a mount (a /dev bound into the chroot would take the host's with it).
if grep -q " $ROOT/" /proc/mounts; then
    echo "something is still mounted under $ROOT: unmount it first" >&2; exit 1
fi
rm -rf "$ROOT"
mkdir -p "$ROOT"
# A fresh bootstrap is kept as a tarball: later runs start from a copy of it
# (REBOOTSTRAP=1 makes a new one).
BASE="$REPO/build/install-chroot.base.tar"
if [ -f "$BASE" ] && [ "${REBOOTSTRAP:-0}" != 1 ]; then
    echo "== fresh $SUITE from $BASE"
    tar -C "$ROOT" -xf "$BASE"
else
    echo "== debootstrap $SUITE (minbase + systemd, python3-venv)"
    # In a private mount namespace: the /proc it mounts inside the chroot goes with it.
    unshare --mount --fork debootstrap --variant=minbase \
        --include=systemd,python3-venv,ca-certificates \
        "$SUITE" "$ROOT" "$MIRROR" > "$REPO/build/install-chroot.debootstrap.log"
    tar -C "$ROOT" -cf "$BASE" .
fi
t1=$(date +%s)

# What the device would have been given: the wheel, deploy/, a model and a gallery.
work="$ROOT/root/itemrec"
mkdir -p "$work"
cp "$WHEEL" "$work/"
cp -r "$REPO/deploy" "$work/deploy"
cp "$REPO/tests/fixtures/tiny_int8.tflite" "$work/model.tflite"
"$REPO/.venv/bin/python" - "$work" "$REPO/tests/fixtures/tiny_reference.npz" <<'EOF'
import sys
from pathlib import Path
import cv2, numpy as np
out = Path(sys.argv[1])
images = np.load(sys.argv[2])["images"]
for code, index in {"A": 0, "B": 1, "C": 5}.items():
    (out / "shelf" / code).mkdir(parents=True)
    cv2.imwrite(str(out / "shelf" / code / "front.png"), cv2.cvtColor(images[index], cv2.COLOR_RGB2BGR))
writer = cv2.VideoWriter(str(out / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 64))
for _ in range(30):
    writer.write(cv2.cvtColor(cv2.resize(images[0], (64, 64)), cv2.COLOR_RGB2BGR))
writer.release()
EOF
"$REPO/.venv/bin/itemrec-edge" gallery build --model "$work/model.tflite" \
    --images "$work/shelf" --db "$work/gallery.db" > /dev/null
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# This machine's trust store (the package index may sit behind a proxy with its own CA).
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"

cat > "$work/inside.sh" <<'EOF'
set -eu
export PIP_DISABLE_PIP_VERSION_CHECK=1
cd /root/itemrec
wheel=$(ls itemrec-*.whl)
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; exit 1; fi; }
s0=$(date +%s)
deploy/install.sh --wheel "$wheel" --extra edge --model model.tflite --gallery gallery.db
s1=$(date +%s)
deploy/install.sh --wheel "$wheel" --extra edge --model model.tflite --gallery gallery.db >/dev/null
s2=$(date +%s)
echo "install.sh: first run $((s1 - s0)) s, second run $((s2 - s1)) s"
check "user itemrec is a system user without login, home /var/lib/itemrec" \
    '[ "$(getent passwd itemrec | cut -d: -f6,7)" = /var/lib/itemrec:/usr/sbin/nologin ] && [ "$(id -u itemrec)" -lt 1000 ]'
check "itemrec is in group video" 'id -nG itemrec | tr " " "\n" | grep -qx video'
check "/var/lib/itemrec is itemrec:itemrec 750" '[ "$(stat -c "%U:%G %a" /var/lib/itemrec)" = "itemrec:itemrec 750" ]'
check "model and gallery are in it, itemrec:itemrec 640" \
    '[ "$(stat -c "%U:%G %a" /var/lib/itemrec/model.tflite /var/lib/itemrec/gallery.db | sort -u)" = "itemrec:itemrec 640" ]'
check "the unit is installed and enabled" \
    '[ -f /etc/systemd/system/itemrec-edge.service ] && [ "$(systemctl is-enabled itemrec-edge)" = enabled ]'
check "settings in /etc/default/itemrec-edge" 'grep -q "^ITEMREC_EDGE_ARGS=" /etc/default/itemrec-edge'
check "systemd-analyze verify of the unit as shipped" 'systemd-analyze verify /etc/systemd/system/itemrec-edge.service'
check "no TensorFlow in the venv" '! /opt/itemrec/venv/bin/python -c "import tensorflow" 2>/dev/null'
check "the itemrec user reads its gallery" \
    'runuser -u itemrec -- /opt/itemrec/venv/bin/itemrec-edge gallery list --db /var/lib/itemrec/gallery.db | grep -q "^3 items"'
# The service's command line, its camera swapped for a video file (no camera in a chroot).
cp clip.avi /tmp/clip.avi && chmod 644 /tmp/clip.avi
events=$(cd /var/lib/itemrec && runuser -u itemrec -- /opt/itemrec/venv/bin/itemrec-edge run --headless \
    --model /var/lib/itemrec/model.tflite --db /var/lib/itemrec/gallery.db --camera /tmp/clip.avi \
    --roi 1 --max-frames 10 2>/dev/null | cut -d'"' -f6 | tr "\n" " ")
check "the service's command runs as itemrec: ready, scan (got: $events)" '[ "$events" = "ready scan " ]'
useradd --create-home kiosk
deploy/install.sh --wheel "$wheel" --extra edge --window-user kiosk >/dev/null
check "window kiosk: autostart entry, groups video and itemrec, service disabled" \
    '[ -f /home/kiosk/.config/autostart/itemrec-edge-window.desktop ] && id -nG kiosk | grep -q itemrec && id -nG kiosk | grep -q video && [ "$(systemctl is-enabled itemrec-edge)" = disabled ]'
check "the kiosk user can write the gallery" 'runuser -u kiosk -- test -w /var/lib/itemrec/gallery.db'
EOF

echo "== install.sh in the chroot"
unshare --mount --fork sh -c "
    mount -t proc proc '$ROOT/proc' && mount --rbind /dev '$ROOT/dev' && mount -t tmpfs tmpfs '$ROOT/run' &&
    chroot '$ROOT' /bin/sh /root/itemrec/inside.sh"
t2=$(date +%s)
du_mb=$(du -smx "$ROOT" | cut -f1)
echo "check-install-chroot: passed; bootstrap $((t1 - t0)) s, install and checks $((t2 - t1)) s, chroot ${du_mb} MB"
