#!/usr/bin/env bash
# Bring a fresh Debian 12 machine (as root) to where podkit runs and its tests pass:
# the real components (runc, conmon, CNI plugins, iptables, catatonit: --init and the
# pods' infra image), the test bed's parts
# (busybox-static, docker-registry, and skopeo/umoci/podman and the OCI runtime-spec
# schema as oracles, tmux as the terminal for the tty tests), uv and the workspace.
# Idempotent, and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  runc conmon containernetworking-plugins iptables iproute2 kmod catatonit
  busybox-static docker-registry skopeo umoci
  jq tmux python3 python3-venv python3-pip ca-certificates
  gnupg openssl apache2-utils
  podman golang-github-containers-common golang-github-opencontainers-specs-dev
)

log() { printf 'install: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "run me as root (podkit mounts overlays and runs runc)"; exit 12
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Do not let package scripts start services (docker-registry ships one on :5000).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# overlayfs is a module on Debian kernels; load it if it is not built in or loaded.
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || \
  log "warning: overlayfs is not available (modprobe overlay failed)"

if ! command -v uv >/dev/null 2>&1; then
  log "installing uv"
  python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages uv
fi
export PATH="$HOME/.local/bin:$PATH"

# The stages' cold start matters: ship compiled bytecode (this environment may set
# PYTHONDONTWRITEBYTECODE, so nothing would be cached on first run).
# Debian's own python3 (built with PGO and LTO) runs the stages' start about 10% faster
# than a self-built interpreter found earlier on PATH (pyenv): pin it where it is.
python_args=()
if /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  python_args=(--python /usr/bin/python3)
fi
uv sync "${python_args[@]}" --locked --all-packages --inexact --compile-bytecode --quiet
log "ready: $(uv run --no-sync pod --version), $(runc --version | head -1), $(conmon --version | head -1)"
