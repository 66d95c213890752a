# Sourceable: QEMU + libvirt on a Debian/Ubuntu machine without systemd (containers, CI), idempotently.
#
#   source scripts/libvirt.sh
#   start_libvirt                   # apt packages, the libvirt-qemu user, virtlogd + libvirtd running
#   ensure_libvirt_python .venv     # the libvirt-python binding in a virtualenv (needs start_libvirt first)
#   start_libvirt_hosts 2           # two more daemons as separate hosts hv1, hv2 (see "several hosts" below)
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

# -- several hosts on one machine ---------------------------------------------------------------------------
#
#   start_libvirt_hosts 2          # hosts hv1, hv2: private libvirtd + virtlogd each, in their own mount namespace
#   libvirt_host_uri hv1           # qemu+unix:///system?socket=/var/lib/alto-hosts/hv1/run/libvirt-sock
#   libvirt_host_pid hv1           # libvirtd's pid (kill -9 it to make the host fail; start_libvirt_hosts revives it)
#   stop_libvirt_hosts             # destroys their domains, stops the daemons (stop_libvirt_host hv1: one)
#
# Each host's daemons see private directories bind-mounted over /run/libvirt, /var/lib/libvirt,
# /var/log/libvirt, /var/cache/libvirt and /etc/libvirt (all under $ALTO_LIBVIRT_HOSTS_DIR/<host>/), so they
# share nothing with the machine's own daemon (qemu:///system, untouched) or with each other: not their domains,
# not their storage pools (a pool at /var/lib/libvirt/altostratus inside is <host>/lib/altostratus outside), not
# their sockets. The QEMU processes run inside the namespace too. See docs/several-machines.md ("The harness").

ALTO_LIBVIRT_HOSTS_DIR="${ALTO_LIBVIRT_HOSTS_DIR:-/var/lib/alto-hosts}"

libvirt_host_uri() { echo "qemu+unix:///system?socket=$ALTO_LIBVIRT_HOSTS_DIR/$1/run/libvirt-sock"; }

_libvirt_pid_alive() {  # _libvirt_pid_alive PIDFILE PROGRAM: the pid in PIDFILE runs PROGRAM
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

libvirt_host_pid() {
  local run="$ALTO_LIBVIRT_HOSTS_DIR/$1/run"
  _libvirt_pid_alive "$run/libvirtd.pid" libvirtd && echo "$(cat "$run/libvirtd.pid")"
}

# start_libvirt_host NAME: that host's daemons running and answering (idempotent; revives a killed libvirtd
# inside the namespace its virtlogd and QEMU processes still live in).
start_libvirt_host() {
  local name="$1" root="$ALTO_LIBVIRT_HOSTS_DIR/$1" uri
  uri="$(libvirt_host_uri "$name")"
  _libvirt_sudo mkdir -p "$root"/{run,lib,log,cache,etc/qemu,etc/secrets,etc/nwfilter,etc/storage}
  [ -f "$root/etc/libvirt.conf" ] || _libvirt_sudo cp /etc/libvirt/libvirt.conf "$root/etc/" 2>/dev/null || true
  if virsh -c "$uri" version >/dev/null 2>&1; then
    return 0
  fi
  local mounts="mount --bind $root/run /run/libvirt && mount --bind $root/lib /var/lib/libvirt \
    && mount --bind $root/log /var/log/libvirt && mount --bind $root/cache /var/cache/libvirt \
    && mount --bind $root/etc /etc/libvirt"
  local daemon="exec libvirtd -p /run/libvirt/libvirtd.pid >>/var/log/libvirt/libvirtd.out 2>&1 </dev/null"
  if _libvirt_pid_alive "$root/run/virtlogd.pid" virtlogd; then
    # The namespace lives on in virtlogd (and the guests): the new libvirtd joins it and adopts the guests.
    setsid nsenter -t "$(cat "$root/run/virtlogd.pid")" -m sh -c "$daemon" &
  else
    setsid unshare -m --propagation private sh -c "$mounts && virtlogd -d -p /run/libvirt/virtlogd.pid && $daemon" &
  fi
  local _i
  for _i in $(seq 1 60); do
    if virsh -c "$uri" version >/dev/null 2>&1; then
      log "libvirt host $name is up: $uri"
      return 0
    fi
    sleep 0.5
  done
  echo "libvirt host $name did not come up; the end of $root/log/libvirtd.out:" >&2
  tail -n 30 "$root/log/libvirtd.out" >&2 2>/dev/null || true
  return 1
}

# start_libvirt_hosts N: hosts hv1..hvN running (after the machine's own libvirt is set up).
start_libvirt_hosts() {
  local n="${1:-2}" i
  start_libvirt || return 1
  for i in $(seq 1 "$n"); do
    start_libvirt_host "hv$i" || return 1
  done
}

# stop_libvirt_host NAME: its guests destroyed (they run in its namespace), then its daemons stopped (waits until
# they are gone: libvirtd removes its pid file before it has finished exiting).
stop_libvirt_host() {
  local root="$ALTO_LIBVIRT_HOSTS_DIR/$1" uri dom prog pids=() pid _i
  uri="$(libvirt_host_uri "$1")"
  if virsh -c "$uri" version >/dev/null 2>&1; then
    for dom in $(virsh -c "$uri" list --name 2>/dev/null); do
      virsh -c "$uri" destroy "$dom" >/dev/null 2>&1 || true
    done
  fi
  for prog in libvirtd virtlogd; do
    if _libvirt_pid_alive "$root/run/$prog.pid" "$prog"; then
      pid="$(cat "$root/run/$prog.pid")"
      pids+=("$pid")
      kill "$pid" 2>/dev/null || true
    fi
  done
  for _i in $(seq 1 60); do
    local alive=""
    for pid in "${pids[@]}"; do
      # Gone, or a zombie waiting for its parent (init) to reap it.
      if [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then alive=1; fi
    done
    [ -z "$alive" ] && return 0
    sleep 0.25
  done
  echo "libvirt host $1 did not stop (pids ${pids[*]})" >&2
  return 1
}

stop_libvirt_hosts() {
  local dir
  for dir in "$ALTO_LIBVIRT_HOSTS_DIR"/*/; do
    [ -d "$dir" ] && stop_libvirt_host "$(basename "$dir")"
  done
  return 0
}
