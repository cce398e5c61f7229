#!/usr/bin/env bash
# Starts the platform locally with a demo workload: installs what is missing (apt),
# builds, then `pdv up` (OLTP and warehouse PostgreSQL, Redis and every stage under ./.pdv,
# 10,000 customers, a continuous workload) until Ctrl-C. Extra arguments go to `pdv up`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPDV_WERROR=ON >/dev/null
cmake --build "$root/build" -j "$(nproc)" --target pdv
data_dir=${PDV_DATA_DIR:-$root/.pdv}
exec "$root/build/src/cli/pdv" up --data-dir "$data_dir" "$@"
