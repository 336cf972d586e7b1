#!/usr/bin/env bash
# Install the Debian packages novadocker needs for tests, the demo and the
# benchmarks; do nothing (quickly) when they are all there.
set -euo pipefail

PACKAGES=(
    runc crun conmon containernetworking-plugins iptables busybox-static
    gcc libc6-dev
    golang-github-containers-common golang-github-docker-docker-dev skopeo umoci
    docker.io docker-registry
    git python3-venv zstd pigz openssl
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == installed ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
fi

echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start services (docker.io would start a system
# dockerd, docker-registry a system registry); we run our own private ones.
policy=/usr/sbin/policy-rc.d
created_policy=
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=1
fi
cleanup() { [[ -z $created_policy ]] || rm -f "$policy"; }
trap cleanup EXIT

apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
