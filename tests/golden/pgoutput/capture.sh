#!/usr/bin/env bash
# Captures real pgoutput messages from a throw-away PostgreSQL into golden files
# (one message per line: "<lsn> <hex>") for the decoder's tests. Run by hand when the
# scenarios change; the files are committed. Needs postgresql-15; run as root or a user.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
tmp=$(mktemp -d /tmp/pdv-capture-XXXXXX)
chmod 755 "$tmp"
as=()
if [[ $(id -u) -eq 0 ]]; then chown postgres "$tmp"; as=(runuser -u postgres --); fi
cleanup() { "${as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
"${as[@]}" "$bindir/initdb" -D "$tmp/data" -U postgres -A trust --no-sync >/dev/null
port=$((20000 + RANDOM % 20000))
"${as[@]}" "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/log" -w -o "-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$tmp -c wal_level=logical -c fsync=off" start >/dev/null
psql() { command psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }

psql <<'SQL'
CREATE TYPE humor AS ENUM ('feliz', 'triste');
CREATE TABLE t (id int PRIMARY KEY, name text, big text, n numeric(10,2), flag boolean, h humor);
CREATE TABLE full_t (id int PRIMARY KEY, v text);
ALTER TABLE full_t REPLICA IDENTITY FULL;
CREATE PUBLICATION pdv_pub FOR TABLE t, full_t;
SELECT 'init' FROM pg_create_logical_replication_slot('s1', 'pgoutput');
SELECT 'init' FROM pg_create_logical_replication_slot('s2', 'pgoutput');
SQL

# basic: every message kind of protocol 1.
psql <<'SQL'
INSERT INTO t VALUES (1, 'ana', NULL, 12.50, true, 'feliz');
INSERT INTO t VALUES (2, E'com\ttab e acentuação', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 200) g), 0.01, false, NULL);
UPDATE t SET name = 'ana maria' WHERE id = 1;
UPDATE t SET n = 99.99 WHERE id = 2;
UPDATE t SET id = 10 WHERE id = 1;
DELETE FROM t WHERE id = 10;
INSERT INTO full_t VALUES (1, 'x');
UPDATE full_t SET v = 'y' WHERE id = 1;
DELETE FROM full_t WHERE id = 1;
BEGIN; INSERT INTO t VALUES (3, 'a', NULL, 1, true, 'triste'); SELECT pg_logical_emit_message(true, 'pdv', 'hello'); COMMIT;
TRUNCATE t;
ALTER TABLE t ADD COLUMN extra text;
INSERT INTO t (id, name, extra) VALUES (4, 'b', 'nova coluna');
SELECT pg_replication_origin_create('upstream');
SELECT pg_replication_origin_session_setup('upstream');
BEGIN; SELECT pg_replication_origin_xact_setup('0/ABCDEF', now()); INSERT INTO t (id) VALUES (5); COMMIT;
SQL
psql -At -F' ' -c "SELECT lsn, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('s1', NULL, NULL, 'proto_version', '1', 'publication_names', 'pdv_pub', 'messages', 'true')" > "$here/basic.hex"

# streamed: protocol 2 with streaming, a transaction bigger than logical_decoding_work_mem,
# a rolled-back subtransaction, and an aborted big transaction.
psql <<'SQL'
SELECT 'drop' FROM pg_drop_replication_slot('s2');
SELECT 'init' FROM pg_create_logical_replication_slot('s2', 'pgoutput');
BEGIN;
INSERT INTO t (id, name) SELECT g, 'stream ' || g FROM generate_series(100, 1100) g;
SAVEPOINT sp;
INSERT INTO t (id, name) SELECT g, 'rolled back ' || g FROM generate_series(2000, 3000) g;
ROLLBACK TO SAVEPOINT sp;
UPDATE t SET name = 'updated in stream' WHERE id = 100;
COMMIT;
BEGIN;
INSERT INTO t (id, name) SELECT g, 'aborted ' || g FROM generate_series(5000, 6000) g;
ROLLBACK;
INSERT INTO t (id, name) VALUES (7, 'after');
SQL
psql -At -F' ' -c "SET logical_decoding_work_mem = '64kB'; SELECT lsn, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('s2', NULL, NULL, 'proto_version', '2', 'publication_names', 'pdv_pub', 'streaming', 'on')" > "$here/streamed.hex"
wc -l "$here"/*.hex
