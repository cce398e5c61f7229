#!/bin/sh
# One Patroni node (deploy/compose.patroni.yaml). Writes /var/lib/postgresql/patroni/
# patroni.yml from the environment and the secrets, then runs Patroni in the foreground.
#   PATRONI_SCOPE      the cluster (oltp or warehouse); every node of one cluster the same
#   NODE_NAME          this node's name and host name on the project's network
#   ETCD_HOSTS         etcd's client endpoints, host:port,...
#   POSTGRES_DB        the database the first node creates (source_db or warehouse)
#   PDV_SLOT           oltp only: the permanent logical slot cdc streams from (pdv_slot)
#   SYNCHRONOUS        warehouse only: "true" for synchronous_mode (and _strict)
# What pdv needs (README: PostgreSQL under Patroni): on the OLTP a permanent logical slot
# and hot_standby_feedback, on the warehouse synchronous_mode; every node listens with TLS
# (hostssl only), as deploy/postgres-entrypoint.sh's single servers do.
set -eu
: "${PATRONI_SCOPE:?}" "${NODE_NAME:?}" "${ETCD_HOSTS:?}" "${POSTGRES_DB:?}"
dir=/var/lib/postgresql/patroni
admin=$(cat /run/secrets/postgres_admin)
replication=$(cat /run/secrets/postgres_replication)
(umask 077 && cp /run/secrets/server_key "$dir/server.key")
slots=""
if [ -n "${PDV_SLOT:-}" ]; then
  slots="    slots:
      ${PDV_SLOT}: {type: logical, database: ${POSTGRES_DB}, plugin: pgoutput}"
fi
sync="${SYNCHRONOUS:-false}"
cat >"$dir/post_init.sh" <<SH
#!/bin/sh
# Patroni runs this once, on the node that bootstraps the cluster (its argument: a
# connection string to it).
exec psql "\$1" -c "CREATE DATABASE ${POSTGRES_DB}"
SH
chmod 700 "$dir/post_init.sh"
(umask 077 && cat >"$dir/patroni.yml" <<YAML
scope: ${PATRONI_SCOPE}
name: ${NODE_NAME}
restapi:
  listen: 0.0.0.0:8008
  connect_address: ${NODE_NAME}:8008
etcd3:
  hosts: ${ETCD_HOSTS}
bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    synchronous_mode: ${sync}
    synchronous_mode_strict: ${sync}
${slots}
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: logical
        hot_standby_feedback: 'on'
        wal_log_hints: 'on'
        max_replication_slots: 10
        max_wal_senders: 10
        synchronous_commit: 'on'
        password_encryption: scram-sha-256
        ssl: 'on'
        ssl_cert_file: /run/secrets/server_cert
        ssl_key_file: ${dir}/server.key
  initdb:
  - encoding: UTF8
  - auth: scram-sha-256
  post_init: ${dir}/post_init.sh
  pg_hba:
  - local all all scram-sha-256
  - hostssl all all 0.0.0.0/0 scram-sha-256
  - hostssl replication all 0.0.0.0/0 scram-sha-256
postgresql:
  listen: 0.0.0.0:${PGPORT:-5432}
  connect_address: ${NODE_NAME}:${PGPORT:-5432}
  data_dir: /var/lib/postgresql/data
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: ${dir}/pgpass
  authentication:
    superuser: {username: postgres, password: '${admin}'}
    replication: {username: replicator, password: '${replication}', sslmode: require}
    rewind: {username: postgres, password: '${admin}', sslmode: require}
YAML
)
exec patroni "$dir/patroni.yml"
