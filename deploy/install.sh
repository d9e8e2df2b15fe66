#!/bin/sh
# Install itemrec-edge as a service on Raspberry Pi OS (or any Debian with systemd), as root:
#
#   sudo deploy/install.sh --wheel itemrec-0.1.0-py3-none-any.whl \
#       [--extra edge-system] [--model model.tflite] [--gallery gallery.db] \
#       [--window-user pi] [--no-apt] [--no-start]
#   (or --source 'git+https://HOST/OWNER/itemrec.git@v0.1.0' instead of --wheel)
#
# What it does, each step safe to repeat:
#   1. apt: python3-venv, and for --extra edge-system Pi OS's python3-opencv,
#      python3-picamera2 (where the archive has it) and python3-numpy;
#   2. a system user `itemrec` (no login, home /var/lib/itemrec) in group video;
#   3. a venv /opt/itemrec/venv with itemrec[EXTRA] (--system-site-packages for edge-system);
#   4. the state directory /var/lib/itemrec (itemrec:itemrec, 0750), with the model and
#      gallery copied in when given; settings in /etc/default/itemrec-edge (kept if present);
#   5. the unit /etc/systemd/system/itemrec-edge.service, enabled; started when systemd runs
#      (not in a chroot or container) and both the model and the gallery are there.
# --window-user USER: a kiosk with a display instead: USER gets the autostart entry
# (deploy/itemrec-edge-window.desktop), joins groups video and itemrec, and the headless
# service is installed but not enabled (one camera, one process).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/itemrec
STATE=/var/lib/itemrec
UNIT=/etc/systemd/system/itemrec-edge.service
DEFAULTS=/etc/default/itemrec-edge
SOURCE="" EXTRA=edge-system MODEL="" GALLERY="" WINDOW_USER="" APT=1 START=1

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) [ -f "${2:-}" ] || die "--wheel: no file ${2:-}"; SOURCE=$(realpath "$2"); shift 2 ;;
        --source) SOURCE=${2:?}; shift 2 ;;
        --extra) EXTRA=${2:?}; shift 2 ;;
        --model) [ -f "${2:-}" ] || die "--model: no file ${2:-}"; MODEL=$(realpath "$2"); shift 2 ;;
        --gallery) [ -f "${2:-}" ] || die "--gallery: no file ${2:-}"; GALLERY=$(realpath "$2"); shift 2 ;;
        --window-user) WINDOW_USER=${2:?}; shift 2 ;;
        --no-apt) APT=0; shift ;;
        --no-start) START=0; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) die "unknown option $1 (--help)" ;;
    esac
done
[ -n "$SOURCE" ] || die "give --wheel FILE or --source PIP-REQUIREMENT"
case "$EXTRA" in edge|edge-gui|edge-system|edge-legacy) ;; *) die "--extra: edge, edge-gui, edge-system or edge-legacy" ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root (sudo)"
command -v systemctl >/dev/null || die "no systemctl: this script installs a systemd service"
if [ -n "$WINDOW_USER" ]; then
    id "$WINDOW_USER" >/dev/null 2>&1 || die "--window-user: no user $WINDOW_USER"
fi

# 1. System packages.
if [ "$APT" -eq 1 ]; then
    packages="python3-venv"
    if [ "$EXTRA" = edge-system ]; then
        packages="$packages python3-numpy python3-opencv"
        # Pi OS's archive has Picamera2; plain Debian has not (USB cameras only there).
        if apt-cache show python3-picamera2 >/dev/null 2>&1; then
            packages="$packages python3-picamera2"
        else
            say "python3-picamera2 is not in this system's archive: USB cameras only"
        fi
    fi
    [ "$EXTRA" = edge-gui ] && packages="$packages libgl1"
    say "apt-get install $packages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
fi

# 2. The service's user: no login, its home is the state directory, in group video.
if ! id itemrec >/dev/null 2>&1; then
    say "creating system user itemrec"
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "itemrec item recognition" itemrec
fi
usermod -a -G video itemrec

# 3. The venv and itemrec in it.
venv_options=""
[ "$EXTRA" = edge-system ] && venv_options="--system-site-packages"
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    say "creating $PREFIX/venv $venv_options"
    mkdir -p "$PREFIX"
    python3 -m venv $venv_options "$PREFIX/venv"
fi
case "$SOURCE" in
    git+*|http://*|https://*) requirement="itemrec[$EXTRA] @ $SOURCE" ;;
    *) requirement="$SOURCE[$EXTRA]" ;;
esac
say "pip install $requirement"
"$PREFIX/venv/bin/python" -m pip install -q --upgrade "$requirement"
"$PREFIX/venv/bin/itemrec-edge" --help >/dev/null

# 4. State directory, model, gallery, settings.
install -d -o itemrec -g itemrec -m 0750 "$STATE"
for pair in "$MODEL:model.tflite" "$GALLERY:gallery.db"; do
    file=${pair%%:*} name=${pair##*:}
    if [ -n "$file" ]; then
        say "copying $file to $STATE/$name"
        install -o itemrec -g itemrec -m 0640 "$file" "$STATE/$name"
    fi
done
if [ ! -f "$DEFAULTS" ]; then
    say "writing $DEFAULTS"
    cat > "$DEFAULTS" <<'EOF'
# itemrec-edge settings: options of `itemrec-edge run` (itemrec-edge run --help).
# After a change: sudo systemctl restart itemrec-edge
ITEMREC_EDGE_ARGS="--camera=auto --threads=4 --stable-frames=4"
EOF
fi

# 5. The unit; enabled (or the window's autostart entry instead).
install -m 0644 "$HERE/itemrec-edge.service" "$UNIT"
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
else
    say "systemd is not running here (chroot or container): daemon-reload and start skipped"
fi
if [ -n "$WINDOW_USER" ]; then
    home=$(getent passwd "$WINDOW_USER" | cut -d: -f6)
    usermod -a -G video,itemrec "$WINDOW_USER"
    # The window's process runs as USER: the gallery (SQLite, WAL) must be writable to it.
    chmod 0770 "$STATE" && find "$STATE" -maxdepth 1 -type f -exec chmod 0660 {} +
    install -d -o "$WINDOW_USER" "$home/.config" "$home/.config/autostart"
    install -o "$WINDOW_USER" -m 0644 "$HERE/itemrec-edge-window.desktop" "$home/.config/autostart/"
    systemctl disable itemrec-edge.service 2>/dev/null || true
    say "window kiosk: $WINDOW_USER starts itemrec at its next desktop login"
    exit 0
fi
systemctl enable itemrec-edge.service
if [ ! -f "$STATE/model.tflite" ] || [ ! -f "$STATE/gallery.db" ]; then
    say "enabled, not started: copy model.tflite and gallery.db to $STATE (owner itemrec), then"
    say "  sudo systemctl start itemrec-edge"
elif [ "$START" -eq 1 ] && [ -d /run/systemd/system ]; then
    systemctl restart itemrec-edge.service
    say "started: journalctl -u itemrec-edge -f"
fi
