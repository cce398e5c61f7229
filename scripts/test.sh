#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing (apt),
# builds, and runs every unit and integration test with CTest. The integration tests
# start their own throw-away PostgreSQL and Redis servers; nothing else is needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${PDV_BUILD_DIR:-$root/build}
bash "$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPDV_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)" --timeout 300 -LE 'multihost|ha' "$@"
# The multi-host fault tests (network namespaces, kills and cut links) and the Patroni
# failover tests (label ha) run after the rest, on their own: they start a dozen servers
# each, and a failover's timing follows the DCS's TTL, not a loaded machine.
ctest --output-on-failure --timeout 300 -L 'multihost|ha' "$@"
