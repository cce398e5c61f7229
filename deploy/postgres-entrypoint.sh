#!/bin/sh
# First start: initdb (SCRAM password auth, from the POSTGRES_PASSWORD_FILE secret) and
# the database POSTGRES_DB. Every start: TCP clients only over TLS (hostssl), with the
# server_cert/server_key secrets (the key copied into PGDATA, mode 0600, as PostgreSQL
# insists); then the server in the foreground, with logical replication on, listening on
# POSTGRES_LISTEN only (PostgreSQL's listen_addresses; no default: compose sets it per
# network, 127.0.0.1 on the host's network).
set -eu
: "${POSTGRES_PASSWORD_FILE:?set POSTGRES_PASSWORD_FILE}"
: "${POSTGRES_LISTEN:?set POSTGRES_LISTEN (the addresses to listen on, e.g. 127.0.0.1)}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U postgres --pwfile="$POSTGRES_PASSWORD_FILE" --auth-local=scram-sha-256 \
    --auth-host=scram-sha-256 >/dev/null
  printf 'hostssl all all 0.0.0.0/0 scram-sha-256\nhostssl replication all 0.0.0.0/0 scram-sha-256\n' \
    >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ -n "${POSTGRES_DB:-}" ]; then
    PGPASSWORD=$(cat "$POSTGRES_PASSWORD_FILE") createdb -U postgres "$POSTGRES_DB"
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
(umask 077 && cp /run/secrets/server_key "$PGDATA/server.key")
exec postgres -D "$PGDATA" -p "$PGPORT" -c listen_addresses="$POSTGRES_LISTEN" \
  -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 \
  -c ssl=on -c ssl_cert_file=/run/secrets/server_cert -c ssl_key_file="$PGDATA/server.key"
