#!/usr/bin/env bash
# Installs the Debian 12 packages pdv needs to build, test and run. Idempotent:
# packages already present are not touched, so a second run costs no network.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format
  libpq-dev postgresql-15 postgresql-client-15
  libssl-dev libboost-dev libhiredis-dev redis-server
  nlohmann-json3-dev libyaml-cpp-dev libfmt-dev libspdlog-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  chromium fonts-dejavu-core
  # Programs the tests, the demo's banner and the benchmarks run: curl (the banner's
  # command, run by the up test), python3 at /usr/bin (bench/freshness, bench/api),
  # iproute2 (ip netns for multi-host tests), procps (ps, pgrep), util-linux (runuser,
  # script), ca-certificates for git over https, openssl (the TLS tests' throw-away CAs),
  # redis-tools (redis-cli: the security test's unauthenticated client, the cluster tests'
  # cluster create), haproxy (the load balancer before two API replicas).
  curl python3 iproute2 procps util-linux ca-certificates openssl redis-tools haproxy
  # PostgreSQL under Patroni with etcd as its DCS (the high-availability tests, issue 34).
  patroni etcd-server etcd-client
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Servers are started by pdv itself on its own ports; keep the packages' default
# services from starting (policy-rc.d 101 = action forbidden).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null && $sudo chmod +x $policy && created_policy=1
fi
trap '[[ $created_policy == 1 ]] && $sudo rm -f $policy' EXIT
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null \
  || { $sudo apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && \
       $sudo apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null; }
