# Sourceable: QEMU + libvirt on a Debian/Ubuntu machine without systemd (containers, CI), idempotently.
#
#   source scripts/libvirt.sh
#   start_libvirt                   # apt packages, the libvirt-qemu user, virtlogd + libvirtd running
#   ensure_libvirt_python .venv     # the libvirt-python binding in a virtualenv (needs start_libvirt first)
#
# Works alone or after scripts/lib.sh (it then reuses lib.sh's apt_install and log). On a host where
# systemd runs libvirtd already, start_libvirt only checks the packages and that the daemon answers.
# See docs/libvirt.md.

LIBVIRT_APT_PACKAGES=(
  qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  libvirt-dev pkg-config dosfstools mtools
)
LIBVIRT_PYTHON_REQUIREMENT="${LIBVIRT_PYTHON_REQUIREMENT:-libvirt-python>=9.0}"

if ! declare -F log >/dev/null; then
  log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fi

if ! declare -F apt_install >/dev/null; then
  _LIBVIRT_APT_UPDATED=""
  apt_install() {
    local missing=() pkg sudo=""
    [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
    for pkg in "$@"; do
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -z "$_LIBVIRT_APT_UPDATED" ]; then
      log "apt-get update"
      $sudo apt-get update -qq
      _LIBVIRT_APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  }
fi

_libvirt_sudo() {
  if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then sudo "$@"; else "$@"; fi
}

# start_libvirt: packages installed, virtlogd and libvirtd running, qemu:///system answering.
start_libvirt() {
  apt_install "${LIBVIRT_APT_PACKAGES[@]}"
  # The packages' post-install scripts do not create these in minimal containers, and the QEMU driver
  # refuses to load without the libvirt-qemu user.
  getent group kvm >/dev/null || _libvirt_sudo groupadd -r kvm
  getent group libvirt-qemu >/dev/null || _libvirt_sudo groupadd -r libvirt-qemu
  id libvirt-qemu >/dev/null 2>&1 || _libvirt_sudo useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt libvirt-qemu
  _libvirt_sudo mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt
  if virsh -c qemu:///system version >/dev/null 2>&1; then
    return 0
  fi
  # Only start what is not running (pidof -s: one pid of exactly that program name).
  pidof -s virtlogd >/dev/null 2>&1 || _libvirt_sudo virtlogd -d
  pidof -s libvirtd >/dev/null 2>&1 || _libvirt_sudo libvirtd -d
  local _i
  for _i in $(seq 1 60); do
    if virsh -c qemu:///system version >/dev/null 2>&1; then
      log "libvirtd is up ($(virsh -c qemu:///system version 2>/dev/null | grep -i 'running hypervisor' || true))"
      return 0
    fi
    sleep 0.5
  done
  echo "libvirtd did not come up; the end of /var/log/libvirt/libvirtd.log:" >&2
  tail -n 30 /var/log/libvirt/libvirtd.log >&2 2>/dev/null || true
  return 1
}

# ensure_libvirt_python VENV_DIR: the libvirt binding importable in that virtualenv.
ensure_libvirt_python() {
  local dir="$1"
  if "$dir/bin/python" -c 'import libvirt' >/dev/null 2>&1; then
    return 0
  fi
  apt_install libvirt-dev pkg-config
  log "pip install $LIBVIRT_PYTHON_REQUIREMENT into $dir"
  "$dir/bin/python" -m pip install -q "$LIBVIRT_PYTHON_REQUIREMENT"
}
