#!/usr/bin/env bash
# Builds the images from local files and runs the compose stack on a Docker engine, then
# checks what a user would: every server and cdc/serve healthy, the curl lookup of a real
# customer answered, pdv status, pdv reconcile clean. Removes the stack (and its volumes)
# at the end. Needs docker.io, docker-compose and debootstrap (installed if missing) and a
# running dockerd; with `--start-dockerd` it starts a private one (bridge networking off,
# no iptables, own data root), as PLATFORM-NOTES.md describes for this kind of machine.
# With `--cluster`, the scaled-out stack (compose.cluster.yaml: a six-node Redis Cluster,
# two API replicas, HAProxy): the lookup goes through HAProxy, and a POS loop runs while
# an API replica and then a Redis master are killed (docker kill); every answer must be
# 200 or 503. With `--host`, the stack on the host's network (compose.host.yaml, host.env's
# settings on free loopback ports), and every server port (PostgreSQL's two, Redis, the
# API, cdc's metrics) must be listened on at 127.0.0.1 only (ss -ltn on the host).
# Every run checks the secrets make-secrets.sh wrote: the directory root's and 0700, each
# file 0600 and owned by the uid of the (one) image user of every service that mounts it
# (docker-compose config of compose.yaml with compose.cluster.yaml; root's if none), the
# public ca_cert and server_cert 0644.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start_dockerd=false cluster=false host=false
for arg in "$@"; do
  case "$arg" in
    --start-dockerd) start_dockerd=true ;;
    --cluster) cluster=true ;;
    --host) host=true ;;
    *) echo "usage: deploy/verify.sh [--start-dockerd] [--cluster | --host]" >&2; exit 2 ;;
  esac
done
if $cluster && $host; then
  echo "deploy/verify.sh: --cluster needs a bridge network (service names); not with --host" >&2
  exit 2
fi
if $start_dockerd; then
  apt-get install -y -o DPkg::Lock::Timeout=600 --no-install-recommends docker.io docker-compose \
    debootstrap >/dev/null
  mkdir -p /var/lib/docker-pdv /run/docker-pdv
  export DOCKER_HOST=unix:///run/docker-pdv/docker.sock
  if ! docker info >/dev/null 2>&1; then
    nohup dockerd --iptables=false --bridge=none --data-root /var/lib/docker-pdv \
      -H "$DOCKER_HOST" --exec-root /run/docker-pdv/exec --pidfile /run/docker-pdv/docker.pid \
      >/var/log/dockerd-pdv.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  fi
fi
docker info >/dev/null
docker image inspect pdv/debian:bookworm >/dev/null 2>&1 || bash deploy/build-base.sh
# The image takes build/src/cli/pdv: rebuilt when this tree has a CMake build directory,
# else (a prebuilt binary only) used as it is.
if [[ -f build/CMakeCache.txt ]]; then cmake --build build --target pdv >/dev/null; fi
[[ -x build/src/cli/pdv ]] || { echo "deploy/verify.sh: no build/src/cli/pdv (cmake --build build --target pdv)" >&2; exit 1; }
# apt inside the builds needs the host's network (there may be no bridge network).
docker build -q --network host -f deploy/Dockerfile -t pdv/pdv . >/dev/null
docker build -q --network host -f deploy/postgres.Dockerfile -t pdv/postgres . >/dev/null
docker build -q --network host -f deploy/redis.Dockerfile -t pdv/redis . >/dev/null
# (The HAProxy image also without --cluster: the secrets check asks it for its user's uid.)
docker build -q --network host -f deploy/haproxy.Dockerfile -t pdv/haproxy . >/dev/null
env_file=$(mktemp)
secrets=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$env_file" <<ENV
INITIAL=10000
RATE=20
API_PUBLISH=$port
ENV
files=(-f deploy/compose.yaml)
up=(up -d --no-build)
want_healthy=5  # oltp, warehouse, redis, cdc, serve
if $host; then
  # host.env's settings, each server on a free port (the host's ports are shared).
  read -r oltp_port warehouse_port redis_port metrics_port < <(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(4)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
  sed -e "s/^OLTP_PORT=.*/OLTP_PORT=$oltp_port/" -e "s/^WAREHOUSE_PORT=.*/WAREHOUSE_PORT=$warehouse_port/" \
    -e "s/^REDIS_PORT=.*/REDIS_PORT=$redis_port/" -e "s/^API_PORT=.*/API_PORT=$port/" \
    -e "s/^CDC_METRICS_PORT=.*/CDC_METRICS_PORT=$metrics_port/" deploy/host.env >"$env_file"
  files+=(-f deploy/compose.host.yaml)
fi
if $cluster; then
  grep -v -e '^#' -e '^INITIAL' -e '^RATE' deploy/cluster.env.example | grep . | sed "s/^API_PUBLISH=.*/API_PUBLISH=$((port + 1))-$((port + 2))/; s/^LB_PUBLISH=.*/LB_PUBLISH=$port/" >>"$env_file"
  files+=(-f deploy/compose.cluster.yaml)
  up+=(--scale serve=2)
  want_healthy=11  # and redis-2..6, a second serve
fi
bash deploy/make-secrets.sh "$env_file" "$secrets" >/dev/null
export PDV_SECRETS=$secrets
compose=(docker-compose -p pdvverify "${files[@]}" --env-file "$env_file")
# The secrets' owners and modes, against the services that mount each (and their images'
# users) in compose.yaml with compose.cluster.yaml (every service and secret there is).
docker-compose -f deploy/compose.yaml -f deploy/compose.cluster.yaml --env-file "$env_file" config |
  /usr/bin/python3 -c '
import os, stat, subprocess, sys, yaml
cfg, d = yaml.safe_load(sys.stdin), sys.argv[1]
public = {"ca_cert", "server_cert"}  # certificates: nothing secret, every user reads them
uids, readers, nobody = {}, {}, ["no container"]
for name, svc in cfg["services"].items():
    image = svc["image"]
    if image not in uids:
        uids[image] = int(subprocess.check_output(
            ["docker", "run", "--rm", "--network", "none", "--entrypoint", "id", image, "-u"]))
    for s in svc.get("secrets", []):
        source = s if isinstance(s, str) else s["source"]
        path = os.path.realpath(cfg["secrets"][source]["file"])
        readers.setdefault(path, {})[name] = uids[image]
bad = []
st = os.stat(d)
if st.st_uid != 0 or stat.S_IMODE(st.st_mode) != 0o700:
    bad.append(f"{d}: uid {st.st_uid} mode {stat.S_IMODE(st.st_mode):04o}, want root 0700")
counts = {}
for f in sorted(os.listdir(d)):
    path = os.path.realpath(os.path.join(d, f))
    st, by = os.stat(path), readers.get(path, {})
    mode, users = stat.S_IMODE(st.st_mode), set(by.values())
    if f in public:
        want = (0, 0o644)
    elif len(users) > 1:
        bad.append(f"{f}: read by several users ({by}): one copy per user")
        continue
    else:
        want = (users.pop() if users else 0, 0o600)
    if (st.st_uid, mode) != want:
        bad.append(f"{f}: uid {st.st_uid} mode {mode:04o}, want uid {want[0]} mode {want[1]:04o} (read by {sorted(by) or nobody})")
    counts[want] = counts.get(want, 0) + 1
if bad:
    sys.exit("deploy/verify.sh: secrets with the wrong owner or mode:\n  " + "\n  ".join(bad))
print("deploy/verify.sh: secrets:", ", ".join(f"{n} file(s) uid {u} mode {m:04o}" for (u, m), n in sorted(counts.items())),
      "; images:", ", ".join(f"{i} uid {u}" for i, u in sorted(uids.items())))
' "$secrets"
loop=""
cleanup() {
  [[ -n "$loop" ]] && kill "$loop" 2>/dev/null
  "${compose[@]}" down -v >/dev/null 2>&1 || true
  rm -rf "$env_file" "$secrets"
}
trap cleanup EXIT
"${compose[@]}" "${up[@]}"
for _ in $(seq 240); do
  healthy=$("${compose[@]}" ps | grep -c "(healthy)" || true)
  [[ "$healthy" -ge "$want_healthy" ]] && break
  sleep 1
done
"${compose[@]}" ps
if $host; then
  # On the host's network each server listens on loopback only.
  for p in "$oltp_port" "$warehouse_port" "$redis_port" "$port" "$metrics_port"; do
    addresses=$(ss -Hltn "sport = :$p" | awk '{print $4}')
    echo "deploy/verify.sh: listening on port $p: $(echo $addresses)"
    if [[ -z "$addresses" ]] || grep -qvx "127.0.0.1:$p" <<<"$addresses"; then
      echo "deploy/verify.sh: port $p is listened on elsewhere than (only) 127.0.0.1" >&2; exit 1
    fi
  done
fi
key=$("${compose[@]}" run --rm --no-deps -T --entrypoint cat keys /var/lib/pdv/pos/api-key)
api="https://127.0.0.1:$port"
for _ in $(seq 90); do
  cpf=$("${compose[@]}" exec -T generate head -1 /var/lib/pdv/cpfs/cpfs.txt 2>/dev/null || true)
  [[ -n "$cpf" ]] && curl -fs --cacert "$secrets/ca_cert" -H "X-API-Key: $key" "$api/v1/clientes/$cpf" >/dev/null && break
  sleep 1
done
echo "curl -s --cacert ca_cert -H \"X-API-Key: \$KEY\" $api/v1/clientes/$cpf"
curl -fsS --cacert "$secrets/ca_cert" -H "X-API-Key: $key" "$api/v1/clientes/$cpf"; echo
# Secure by default: plain HTTP gets no answer, Redis nothing without a password, each
# stage sees only its own secrets.
if curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
  echo "deploy/verify.sh: the API answered plain HTTP" >&2; exit 1
fi
"${compose[@]}" exec -T redis sh -c 'redis-cli --tls --cacert /run/secrets/ca_cert -h 127.0.0.1 -p ${REDIS_PORT:-6379} hset pdv:apikey:x name x' | grep -q NOAUTH
for stage in cdc transform cache monitor; do
  seen=$("${compose[@]}" exec -T "$stage" ls /run/secrets)
  if grep -qx -e cpf_key -e admin.yaml -e postgres_admin <<<"$seen"; then
    echo "deploy/verify.sh: $stage sees secrets it does not need: $seen" >&2; exit 1
  fi
  if "${compose[@]}" exec -T "$stage" grep -q cpf_key: "/run/secrets/$stage.yaml"; then
    echo "deploy/verify.sh: $stage's configuration holds cpf_key" >&2; exit 1
  fi
done
if $cluster; then
  # A POS loop through HAProxy while an API replica, then a Redis master, is killed.
  lookup() {
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 3 --retry 1 --retry-all-errors \
      --cacert "$secrets/ca_cert" -H "X-API-Key: $key" "$api/v1/clientes/$cpf" || true
  }
  codes=$(mktemp)
  (for _ in $(seq 1500); do lookup; done) >"$codes" &
  loop=$!
  sleep 2
  docker kill "$("${compose[@]}" ps -q serve | head -1)" >/dev/null
  sleep 3
  master=$("${compose[@]}" exec -T redis sh -c 'redis-cli --tls --cacert /run/secrets/ca_cert --no-auth-warning --askpass -h redis -p $REDIS_PORT cluster nodes </run/secrets/redis_admin' | awk '$3 ~ /master/ && $3 !~ /fail/ {n = split($2, a, ","); print a[n]; exit}')
  victim=$(docker ps -q --filter "label=com.docker.compose.project=pdvverify" | while read -r c; do
    docker exec "$c" sh -c 'echo $NODE_HOST' 2>/dev/null | grep -qx "$master" && echo "$c"; done | head -1 || true)
  [[ -n "$victim" ]] || victim=$("${compose[@]}" ps -q redis)
  docker kill "$victim" >/dev/null
  wait "$loop"
  loop=""
  echo "deploy/verify.sh: POS loop through an API replica kill and a Redis master kill: $(sort "$codes" | uniq -c | tr '\n' ' ')"
  if grep -qv -e '^200$' -e '^503$' "$codes"; then
    echo "deploy/verify.sh: answers other than 200 and 503 through HAProxy" >&2; exit 1
  fi
  tail -50 "$codes" | grep -qx 200 || { echo "deploy/verify.sh: no answers after the failover" >&2; exit 1; }
  docker start "$victim" >/dev/null
  "${compose[@]}" "${up[@]}" >/dev/null 2>&1
fi
admin=("${compose[@]}" run --rm --no-deps -T --entrypoint pdv grants --config /run/secrets/admin.yaml)
"${admin[@]}" status
"${admin[@]}" reconcile --wait 60
echo "deploy/verify.sh: the compose stack$($host && echo " (host network)") answered over HTTPS, kept its doors shut and reconciled clean"
