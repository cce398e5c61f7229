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
ctest --output-on-failure -j "$(nproc)" --timeout 300 -LE multihost "$@"
# The multi-host fault tests (network namespaces, kills and cut links on a shared machine)
# have known intermittent failures, under investigation (see the issue 13 note): a rare
# extra dimension row after a cut, an API host not back UP in HAProxy after a heal. A
# failed one runs once more; both runs' output stays in the log, and one that fails twice
# fails the suite.
ctest --output-on-failure --timeout 300 -L multihost --repeat until-pass:2 "$@"
