#!/usr/bin/env bash
# System part of June's setup (root, Debian bookworm): the Docker engine and the sandbox image.
# Called by `scripts/setup.sh --system`; safe to run again: it only does what is missing.
#   1. apt packages: docker.io (engine + CLI), debootstrap (offline image build), util-linux
#      (unshare, for the process backend's namespaces). apt-get runs only if one is missing.
#   2. dockerd: started in the background unless `docker info` already answers (systemd when it
#      runs, else plain `dockerd`), then waited for (JUNE_DOCKERD_TIMEOUT, default 60 s).
#   3. the sandbox image june-sandbox:py311: built offline (debootstrap + docker import, about
#      1-2 minutes) unless the engine already has it.
#   4. PostgreSQL (Debian's postgresql, 15 on bookworm): the cluster started, a `june` role (password
#      `june`, CREATEDB) and a `june` database for the team deployment and the PostgreSQL tests
#      (JUNE_TEST_POSTGRES_URL, default postgresql://june:june@127.0.0.1:5432/june).
# If the engine cannot start (e.g. an unprivileged container), June still works with the process
# sandbox: the script warns and exits 0, unless JUNE_REQUIRE_DOCKER=1.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${JUNE_SANDBOX_IMAGE:-june-sandbox:py311}"
TIMEOUT="${JUNE_DOCKERD_TIMEOUT:-60}"
PACKAGES=(docker.io debootstrap util-linux ca-certificates postgresql)

log() { echo "[setup-system] $*"; }
fail_docker() {
  if [ "${JUNE_REQUIRE_DOCKER:-0}" = 1 ]; then
    log "ERROR: $*"; exit 1
  fi
  log "WARNING: $* -- the Docker sandbox is unavailable; June will use the process sandbox"
  exit 0
}

if [ "$(id -u)" != 0 ]; then
  log "must run as root (apt-get, dockerd, debootstrap)"; exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "packages present: ${PACKAGES[*]}"
fi

# PostgreSQL first: it does not depend on Docker, and the deployment tests need it either way.
pg_up() { su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1; }
if pg_up; then
  log "postgresql answers"
else
  cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    log "ERROR: no PostgreSQL cluster (pg_lsclusters is empty)"; exit 1
  fi
  log "starting postgresql cluster $cluster"
  # shellcheck disable=SC2086
  pg_ctlcluster $cluster start
  waited=0
  until pg_up; do
    if [ "$waited" -ge 30 ]; then log "ERROR: postgresql did not answer within 30s"; exit 1; fi
    sleep 1; waited=$((waited + 1))
  done
fi
su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='june'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"create role june login createdb password 'june'\""
su postgres -c "psql -qAtc \"select 1 from pg_database where datname='june'\"" | grep -q 1 \
  || su postgres -c "createdb -O june june"
log "postgresql ready: postgresql://june:june@127.0.0.1:5432/june"

docker_up() { docker info >/dev/null 2>&1; }

if docker_up; then
  log "docker engine answers"
else
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    log "starting docker with systemd"
    systemctl start docker || true
  fi
  if ! docker_up && [ -z "${DOCKER_HOST:-}" ]; then
    log "starting dockerd in the background (log: /var/log/june-dockerd.log)"
    setsid nohup dockerd >/var/log/june-dockerd.log 2>&1 </dev/null &
  fi
  waited=0
  until docker_up; do
    if [ "$waited" -ge "$TIMEOUT" ]; then
      tail -n 20 /var/log/june-dockerd.log 2>/dev/null || true
      fail_docker "docker engine did not answer within ${TIMEOUT}s"
    fi
    sleep 1; waited=$((waited + 1))
  done
  log "docker engine answers after ${waited}s"
fi

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "sandbox image $IMAGE present"
else
  log "building sandbox image $IMAGE offline (debootstrap + docker import)"
  python3 june_pipelines/sandboxes/image.py --tag "$IMAGE" || fail_docker "building $IMAGE failed"
fi
