# Shared set-up steps of scripts/up and scripts/test: each installs what it needs, idempotently, on a fresh
# Debian/Ubuntu machine that has only python3 (as root, or with sudo for the apt steps).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
APT_UPDATED=""

# What the embedded default's demo marketplace builds its images from (marketplace/demo_images.py): a
# distribution kernel, a static busybox, SYSLINUX and the FAT tools. Without them the first marketplace call
# answers 409 MarketplaceUnavailable, so scripts/up installs them as well as scripts/test.
# zstd: newer kernels ship their modules zstd-compressed.
DEMO_IMAGE_APT_PACKAGES=(linux-image-amd64 busybox-static syslinux syslinux-common mtools dosfstools zstd)

# The portal's browser tests (tests/portal): Debian's Chromium, driven by Playwright (a test dependency in
# pyproject) with the system binary - never `playwright install`, which downloads a browser from a CDN - and
# certutil, which trusts the server's CA in the test browser's NSS database.
BROWSER_APT_PACKAGES=(chromium libnss3-tools)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Missing system packages: ${missing[*]} (and no apt-get to install them)." >&2
    return 1
  fi
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_venv DIR EXTRAS: a virtualenv with the project installed (editable) with those extras.
ensure_venv() {
  local dir="$ROOT/$1" extras="$2"
  if [ ! -x "$dir/bin/python" ]; then
    if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
      apt_install python3-venv
    fi
    log "creating $1"
    "$PYTHON" -m venv "$dir"
  fi
  local stamp="$dir/.installed-$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-${extras//[^a-z-]/_}"
  if [ ! -f "$stamp" ]; then
    log "installing altostratus${extras:+[$extras]} into $1 (about a minute the first time)"
    "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
    local spec="$ROOT"
    [ -n "$extras" ] && spec="$ROOT[$extras]"
    # Not -q: the first install downloads and builds for most of a minute, and silence looks like a hang.
    # pip's own "Collecting …" lines are the progress; the already-satisfied noise is filtered out.
    "$dir/bin/python" -m pip install --progress-bar off -e "$spec" | { grep -v '^Requirement already satisfied' >&2 || true; }
    rm -f "$dir"/.installed-*
    touch "$stamp"
  fi
}

# ensure_tool_venv DIR SPEC: a virtualenv holding one tool from the package registry (not the project), for tests
# that run a real client as a subprocess: the Azure CLI lines (tests/support/az.py). Reinstalled only when SPEC
# changes, so a current-line spec stays at the release it first got until the venv is removed.
ensure_tool_venv() {
  local dir="$ROOT/$1" spec="$2"
  local stamp="$dir/.installed-$(printf '%s' "$spec" | sha256sum | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  if [ ! -x "$dir/bin/python" ]; then
    if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
      apt_install python3-venv
    fi
    log "creating $1"
    "$PYTHON" -m venv "$dir"
  fi
  log "installing $spec into $1 (a minute or two the first time)"
  "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$dir/bin/python" -m pip install --progress-bar off "$spec" | { grep -v '^Requirement already satisfied' >&2 || true; }
  rm -f "$dir"/.installed-*
  touch "$stamp"
}

# The two Azure CLI lines the az tests drive: 2.66 (the last with Azure Stack's hybrid profiles, the line Azure
# Stack Hub's docs point to) and the current release (profile latest).
AZ_CLI_VENVS=(".venv-az266=azure-cli==2.66.*" ".venv-az=azure-cli")

ensure_az_cli_venvs() {
  local entry
  for entry in "${AZ_CLI_VENVS[@]}"; do
    ensure_tool_venv "${entry%%=*}" "${entry#*=}"
  done
}

as_postgres() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

# start_postgres: a running local PostgreSQL server and an admin URL in ALTO_TEST_POSTGRES_URL.
start_postgres() {
  apt_install postgresql
  local version
  version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  local cluster_conf="/etc/postgresql/$version/main"
  if [ ! -d "$cluster_conf" ]; then
    log "creating PostgreSQL $version cluster"
    $SUDO pg_createcluster "$version" main >/dev/null
  fi
  if ! $SUDO pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    log "starting PostgreSQL $version"
    $SUDO pg_ctlcluster "$version" main start
  fi
  local port
  port="$($SUDO pg_conftool -s "$version" main show port 2>/dev/null || echo 5432)"
  for _ in $(seq 1 30); do
    as_postgres psql -p "$port" -qAtc 'select 1' >/dev/null 2>&1 && break || sleep 1
  done
  as_postgres psql -p "$port" -qAtc "select 1 from pg_roles where rolname='alto'" | grep -q 1 ||
    as_postgres psql -p "$port" -qc "create role alto login superuser password 'alto'" >/dev/null
  export ALTO_TEST_POSTGRES_URL="postgresql://alto:alto@127.0.0.1:$port/postgres"
}
