#!/usr/bin/env bash
# Install hall-edge on Raspberry Pi OS / Debian 12 as services. Safe to run again
# (an upgrade is the same command); an edited config or udev rule is never
# overwritten: the new example lands next to it as *.dist.
#
#   sudo systemd/install.sh                     install from this source tree
#   sudo systemd/install.sh --wheel FILE.whl    install a built wheel
#   sudo systemd/install.sh --uninstall         remove it; keeps the data and the config
#   sudo systemd/install.sh --central --no-kiosk   the hall's queue server (hall-central)
#
# Layout: code in /opt/hall-edge (venv in /opt/hall-edge/venv), config in
# /etc/hall-edge, data in /var/lib/hall-edge, user hall-edge in the groups its
# devices need (dialout, gpio, input, lp, audio). hall-agent.service is enabled
# (started with --start); the kiosk is a systemd user unit enabled for the
# desktop session, plus an XDG autostart entry.
set -euo pipefail

PREFIX=/opt/hall-edge
CONF=/etc/hall-edge
DATA=/var/lib/hall-edge
USER_NAME=hall-edge
GROUPS_NEEDED=(dialout gpio input lp audio)
APT_PACKAGES=(python3 python3-venv python3-pip espeak-ng fonts-wqy-microhei)
# The kiosk (PyQt6's own Qt): the runtime, and what its xcb platform plugin loads
# (QT_DEBUG_PLUGINS=1 hall-kiosk; ldd .../PyQt6/Qt6/plugins/platforms/libqxcb.so).
# Without them Qt aborts with "Could not load the Qt platform plugin xcb" (rc 134)
# and the unit restarts for ever. The same list as scripts/bootstrap.
KIOSK_PACKAGES=(libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3
                libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
                libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xkb1
                libxcb-xfixes0)

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
WHEEL="" NO_DEPS=0 NO_APT=0 KIOSK=1 START=0 UNINSTALL=0 PURGE=0 CENTRAL=0
CENTRAL_USER=hall-central
CENTRAL_DATA=/var/lib/hall-central

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; cat <<'EOF'
options:
  --wheel FILE   install this wheel instead of the source tree
  --no-deps      do not install Python dependencies (offline test installs)
  --no-apt       do not install Debian packages
  --no-kiosk     agent only (a box without a display)
  --central      also hall-central, the hall's queue server (hall-central.service,
                 /etc/hall-edge/central.toml, data in /var/lib/hall-central, user hall-central)
  --start        (re)start the agent now (and hall-central with --central)
  --uninstall    remove the code, units and rules; keep /var/lib/hall-edge and /etc/hall-edge
  --purge        with --uninstall: also remove /etc/hall-edge and the hall-edge user
EOF
}

while (($#)); do
  case "$1" in
    --wheel) WHEEL=$2; shift ;;
    --no-deps) NO_DEPS=1 ;;
    --no-apt) NO_APT=1 ;;
    --no-kiosk) KIOSK=0 ;;
    --central) CENTRAL=1 ;;
    --start) START=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) PURGE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "install.sh: $*"; }
[[ $(id -u) -eq 0 ]] || { echo "install.sh: run it as root (sudo $0)" >&2; exit 2; }

# systemd as PID 1 (not in a chroot or an image build): only then reload, start, trigger.
running_systemd() { [[ -d /run/systemd/system ]]; }

if ((UNINSTALL)); then
  if running_systemd; then
    systemctl disable --now hall-agent.service 2>/dev/null || true
  else
    systemctl disable hall-agent.service 2>/dev/null || true
  fi
  systemctl --global disable hall-kiosk.service 2>/dev/null || true
  if running_systemd; then
    systemctl disable --now hall-central.service 2>/dev/null || true
  else
    systemctl disable hall-central.service 2>/dev/null || true
  fi
  rm -f /etc/systemd/system/hall-central.service /usr/local/bin/hall-central
  rm -f /etc/systemd/system/hall-agent.service /etc/systemd/user/hall-kiosk.service \
        /etc/xdg/autostart/hall-kiosk.desktop /etc/bash_completion.d/hallctl \
        /usr/local/bin/hallctl /usr/local/bin/hall-agent /usr/local/bin/hall-kiosk
  if [[ -f /etc/udev/rules.d/99-hall-edge.rules ]]; then
    # Site-made lines are kept for a reinstall, next to the config.
    mkdir -p "$CONF"
    mv /etc/udev/rules.d/99-hall-edge.rules "$CONF/99-hall-edge.rules.saved"
  fi
  rm -rf "$PREFIX"
  if running_systemd; then
    systemctl daemon-reload
    udevadm control --reload 2>/dev/null || true
  fi
  if ((PURGE)); then
    rm -rf "$CONF"
    userdel "$USER_NAME" 2>/dev/null || true
    userdel "$CENTRAL_USER" 2>/dev/null || true
  fi
  say "removed. Kept: $DATA (tickets, logs)$( ((PURGE)) || echo " and $CONF (config)")."
  say "to remove the data too: sudo rm -rf $DATA"
  exit 0
fi

# ------------------------------------------------------------------ packages
if ((!NO_APT)); then
  missing=()
  ((KIOSK)) && APT_PACKAGES+=("${KIOSK_PACKAGES[@]}")
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
fi

# ------------------------------------------------------------------ user and groups
for g in "${GROUPS_NEEDED[@]}"; do
  getent group "$g" >/dev/null || { groupadd --system "$g"; say "created group $g"; }
done
if ! id "$USER_NAME" >/dev/null 2>&1; then
  useradd --system --user-group --home-dir "$DATA" --no-create-home \
          --shell /usr/sbin/nologin --comment "hall-edge agent" "$USER_NAME"
  say "created user $USER_NAME"
fi
usermod -a -G "$(IFS=,; echo "${GROUPS_NEEDED[*]}")" "$USER_NAME"

# ------------------------------------------------------------------ directories
install -d -o root -g root -m 0755 "$PREFIX" "$PREFIX/bin" "$PREFIX/share"
install -d -o root -g "$USER_NAME" -m 0755 "$CONF"
install -d -o "$USER_NAME" -g "$USER_NAME" -m 0750 "$DATA"

# ------------------------------------------------------------------ code
if [[ ! -x $PREFIX/venv/bin/python ]]; then
  python3 -m venv "$PREFIX/venv"
  say "created $PREFIX/venv"
fi
PIP=("$PREFIX/venv/bin/python" -m pip install -q --disable-pip-version-check)
target=${WHEEL:-$SRC}
extras="[kiosk]"
((KIOSK)) || extras=""
if ((NO_DEPS)); then
  "${PIP[@]}" --no-deps --force-reinstall "$target"
else
  "${PIP[@]}" "$target$extras"
  "${PIP[@]}" --no-deps --force-reinstall "$target"   # same version number, new code
fi
for tool in hallctl hall-agent hall-kiosk hall-central; do
  [[ -x $PREFIX/venv/bin/$tool ]] && ln -sfn "$PREFIX/venv/bin/$tool" "/usr/local/bin/$tool"
done
if ! "$PREFIX/venv/bin/hallctl" completion bash > "$PREFIX/share/hallctl.bash" 2>/dev/null; then
  rm -f "$PREFIX/share/hallctl.bash"
  say "no bash completion (the Python dependencies are not installed)"
else
  install -D -m 0644 "$PREFIX/share/hallctl.bash" /etc/bash_completion.d/hallctl
fi
[[ -f $SRC/docs/troubleshooting.md ]] && install -m 0644 "$SRC/docs/troubleshooting.md" "$PREFIX/share/"
[[ -f $SRC/docs/central.md ]] && install -m 0644 "$SRC/docs/central.md" "$PREFIX/share/"

# ------------------------------------------------------------------ config (never overwritten)
# agent.toml holds no secret (those live in files it names), so the kiosk's
# desktop user may read it too.
place() {  # place SRC DEST MODE GROUP
  if [[ -e $2 ]]; then
    if ! cmp -s "$1" "$2"; then
      install -m "$3" -o root -g "$4" "$1" "$2.dist"
      say "kept your $2; the new example is $2.dist"
    fi
  else
    install -m "$3" -o root -g "$4" "$1" "$2"
    say "installed $2"
  fi
}
place "$SRC/config/agent.toml" "$CONF/agent.toml" 0644 "$USER_NAME"
place "$SRC/config/services.toml" "$CONF/services.toml" 0644 "$USER_NAME"
place "$HERE/99-hall-edge.rules" /etc/udev/rules.d/99-hall-edge.rules 0644 root

# ------------------------------------------------------------------ units
install -m 0644 "$HERE/hall-agent.service" /etc/systemd/system/hall-agent.service
out=$(systemctl enable hall-agent.service 2>&1) || { echo "$out" >&2; exit 1; }
if ((KIOSK)); then
  install -D -m 0644 "$HERE/hall-kiosk.service" /etc/systemd/user/hall-kiosk.service
  install -m 0755 "$HERE/hall-kiosk-session" "$PREFIX/bin/hall-kiosk-session"
  install -D -m 0644 "$HERE/hall-kiosk.desktop" /etc/xdg/autostart/hall-kiosk.desktop
  out=$(systemctl --global enable hall-kiosk.service 2>&1) || { echo "$out" >&2; exit 1; }
fi

# ------------------------------------------------------------------ hall-central (--central)
if ((CENTRAL)); then
  if ! id "$CENTRAL_USER" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$CENTRAL_DATA" --no-create-home \
            --shell /usr/sbin/nologin --comment "hall-central queue server" "$CENTRAL_USER"
    say "created user $CENTRAL_USER"
  fi
  install -d -o "$CENTRAL_USER" -g "$CENTRAL_USER" -m 0750 "$CENTRAL_DATA"
  # central.toml may name password files: readable by hall-central only.
  place "$SRC/config/central.toml" "$CONF/central.toml" 0640 "$CENTRAL_USER"
  install -m 0644 "$HERE/hall-central.service" /etc/systemd/system/hall-central.service
  out=$(systemctl enable hall-central.service 2>&1) || { echo "$out" >&2; exit 1; }
fi

if running_systemd; then
  systemctl daemon-reload
  if ((CENTRAL)); then
    if ((START)); then systemctl restart hall-central.service
    else systemctl try-restart hall-central.service; fi
  fi
  udevadm control --reload && udevadm trigger --subsystem-match=tty \
    --subsystem-match=input --subsystem-match=usb --subsystem-match=gpio || true
  if ((START)); then
    systemctl restart hall-agent.service
  else
    systemctl try-restart hall-agent.service   # an upgrade: run the new code
  fi
fi

say "done: hall-agent.service is enabled$( ((START)) && echo " and started")."
((CENTRAL)) && say "      hall-central.service too: edit $CONF/central.toml, check it with" \
  "hall-central --check, add clerks with hall-central user add STAFF --windows 5,6"
say "next: edit $CONF/agent.toml (device ports: hallctl udev suggest), then"
say "      sudo systemctl restart hall-agent && hallctl doctor"
