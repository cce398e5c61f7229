#!/usr/bin/env bash
# Makes every secret of the compose stack, in DIR (default deploy/secrets; mode 0700):
# the servers' administrator passwords, one password per stage role and Redis user,
# cpf_key, a CA and the servers' certificate (every service name, localhost, 127.0.0.1),
# the Redis ACL file (password hashes only), and one configuration file per stage holding
# only that stage's URLs (TLS: verify-full, rediss://). Existing secrets are kept.
# Compose (not swarm) bind-mounts each secret file into the containers that need it with
# the host file's owner and mode, so every secret file is 0600 and owned by the uid of the
# one container user that reads it (fixed in the Dockerfiles: postgres 540, redis 541,
# haproxy 542, pdv 543; POSTGRES_UID, REDIS_UID, HAPROXY_UID, PDV_UID if an image is
# built with another). The servers' private key has one copy per user (postgres_, redis_,
# serve_ and lb_server_key); the original server_key, ca.key, cpf_key and erasure_key
# (copied into the stage files, never mounted) stay root's. Only the public certificates,
# ca_cert and server_cert, are 0644 (no secret in them; every container verifies with
# ca_cert). A re-run keeps every secret and resets these owners and modes. Needs root
# (chown).
#   sudo bash deploy/make-secrets.sh deploy/.env [DIR]
set -euo pipefail
if [[ $EUID -ne 0 ]]; then
  echo "deploy/make-secrets.sh: run it as root (sudo): it chowns each secret file to the uid of the container user that reads it (0600)" >&2
  exit 1
fi
root=$(cd "$(dirname "$0")/.." && pwd)
env_file=${1:?usage: make-secrets.sh ENV_FILE [DIR]}
out=${2:-$root/deploy/secrets}
pdv=${PDV_BIN:-$root/build/src/cli/pdv}
set -a
# shellcheck disable=SC1090
source "$env_file"
set +a
postgres_uid=${POSTGRES_UID:-540} redis_uid=${REDIS_UID:-541} haproxy_uid=${HAPROXY_UID:-542}
pdv_uid=${PDV_UID:-543}
mkdir -p "$out"
chown 0:0 "$out"
chmod 700 "$out"
umask 077
secret() { [[ -s "$out/$1" ]] || openssl rand -hex "$2" >"$out/$1"; }
for name in postgres_admin postgres_replication redis_admin pdv_generate pdv_cdc pdv_transform pdv_cache pdv_monitor \
  pdv-cache pdv-serve pdv-monitor; do
  secret "$name" 16
done
secret cpf_key 32
secret erasure_key 32  # the LGPD erasure register's HMAC key (pdv subject; cdc)
if [[ ! -s "$out/server_cert" ]]; then
  ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  (umask 077 && openssl req -x509 "${ec[@]}" -keyout "$out/ca.key" -out "$out/ca_cert" \
    -days 825 -subj /CN=pdv-compose-ca 2>/dev/null)
  openssl req "${ec[@]}" -keyout "$out/server_key" -out "$out/server.csr" -subj /CN=pdv 2>/dev/null
  # oltp-2, oltp-3, warehouse-2, warehouse-3: the Patroni nodes (compose.patroni.yaml).
  names=DNS:oltp,DNS:oltp-2,DNS:oltp-3,DNS:warehouse,DNS:warehouse-2,DNS:warehouse-3,DNS:redis,DNS:redis-2,DNS:redis-3,DNS:redis-4,DNS:redis-5
  printf 'subjectAltName=%s,DNS:redis-6,DNS:serve,DNS:lb,DNS:localhost,IP:127.0.0.1\n' "$names" \
    >"$out/san.ext"
  openssl x509 -req -in "$out/server.csr" -CA "$out/ca_cert" -CAkey "$out/ca.key" \
    -CAcreateserial -out "$out/server_cert" -days 825 -extfile "$out/san.ext" 2>/dev/null
  rm -f "$out/server.csr" "$out/san.ext"
fi
for user in postgres redis serve lb; do cp "$out/server_key" "$out/${user}_server_key"; done
"$pdv" grant --passwords "$out" --redis-acl "$out/redis_admin" >"$out/redis_acl"
probe_hash=$(PDV_CPF_KEY=$(cat "$out/cpf_key") "$pdv" grant --probe-hash)

# OLTP_HOSTS / WAREHOUSE_HOSTS (host:port,host:port...): a Patroni cluster by its every
# node; target_session_attrs=read-write (below) then reaches its primary.
oltp="${OLTP_HOSTS:-${OLTP_HOST:-oltp}:${OLTP_PORT:-5432}}"
warehouse="${WAREHOUSE_HOSTS:-${WAREHOUSE_HOST:-warehouse}:${WAREHOUSE_PORT:-5432}}"
redis="${REDIS_HOST:-redis}:${REDIS_PORT:-6379}"
pg_tls="sslmode=verify-full&sslrootcert=/run/secrets/ca_cert&target_session_attrs=read-write"
pg() { echo "postgresql://$1:$(cat "$out/$2")@$3?$pg_tls"; }
# REDIS_CLUSTER_NODES (host:port,host:port...): a Redis Cluster by its seed nodes.
rd() {
  if [[ -n "${REDIS_CLUSTER_NODES:-}" ]]; then
    echo "rediss+cluster://$1:$(cat "$out/$2")@$REDIS_CLUSTER_NODES?ca_cert=/run/secrets/ca_cert"
  else
    echo "rediss://$1:$(cat "$out/$2")@$redis/0?ca_cert=/run/secrets/ca_cert"
  fi
}
common() {
  cat <<YAML
listen: ${API_HOST:-serve}:${API_PORT:-8080}
log_format: json
cdc:
  metrics_listen: ${CDC_METRICS_BIND:-0.0.0.0}:${CDC_METRICS_PORT:-9187}
YAML
}
write() { # stage, then its lines
  local file="$out/$1.yaml"
  shift
  { echo "# Written by deploy/make-secrets.sh: this stage's settings and credentials only."
    common
    printf '%s\n' "$@"; } >"$file"
}
write admin "oltp_url: $(pg postgres postgres_admin "$oltp/source_db")" \
  "warehouse_url: $(pg postgres postgres_admin "$warehouse/warehouse")" \
  "redis_url: $(rd default redis_admin)" "cpf_key: $(cat "$out/cpf_key")" \
  "erasure_key: $(cat "$out/erasure_key")" "monitor:" "  api_ca_cert: /run/secrets/ca_cert"
write generate "oltp_url: $(pg pdv_generate pdv_generate "$oltp/source_db")" \
  "cpf_key: $(cat "$out/cpf_key")"
write cdc "oltp_url: $(pg pdv_cdc pdv_cdc "$oltp/source_db")" \
  "warehouse_url: $(pg pdv_cdc pdv_cdc "$warehouse/warehouse")" \
  "erasure_key: $(cat "$out/erasure_key")"
write transform "warehouse_url: $(pg pdv_transform pdv_transform "$warehouse/warehouse")"
write cache "warehouse_url: $(pg pdv_cache pdv_cache "$warehouse/warehouse")" \
  "redis_url: $(rd pdv-cache pdv-cache)"
write serve "redis_url: $(rd pdv-serve pdv-serve)" "cpf_key: $(cat "$out/cpf_key")" \
  "api:" "  tls_cert: /run/secrets/server_cert" "  tls_key: /run/secrets/server_key"
write monitor "oltp_url: $(pg pdv_monitor pdv_monitor "$oltp/source_db")" \
  "warehouse_url: $(pg pdv_monitor pdv_monitor "$warehouse/warehouse")" \
  "redis_url: $(rd pdv-monitor pdv-monitor)" "monitor:" "  api_ca_cert: /run/secrets/ca_cert" \
  "  probe_cpf_hash: $probe_hash"
# Every file root's and owner-only, then each mounted one its consumer's; the certificates
# public.
chown 0:0 "$out"/*
chmod 600 "$out"/*
own() { # uid, then the files that uid's containers (only) read
  local uid=$1 file
  shift
  for file in "$@"; do chown "$uid:$uid" "$out/$file"; done
}
own "$postgres_uid" postgres_admin postgres_replication postgres_server_key
own "$redis_uid" redis_acl redis_admin redis_server_key
own "$haproxy_uid" lb_server_key
own "$pdv_uid" serve_server_key admin.yaml generate.yaml cdc.yaml transform.yaml cache.yaml \
  serve.yaml monitor.yaml pdv_generate pdv_cdc pdv_transform pdv_cache pdv_monitor pdv-cache \
  pdv-serve pdv-monitor
chmod 644 "$out/ca_cert" "$out/server_cert"
echo "deploy/make-secrets.sh: secrets in $out"
