#!/bin/sh
# One-shot: forms the Redis Cluster of NODES (host:port, six or more: one replica per
# master) unless it is formed already, then waits for cluster_state:ok. redis-cli reads
# the administrator's password on stdin (--askpass).
set -eu
cli() { redis-cli --tls --cacert /run/secrets/ca_cert --no-auth-warning --askpass "$@" </run/secrets/redis_admin; }
first=${NODES%% *}
host=${first%:*} port=${first#*:}
until cli -h "$host" -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.5; done
if ! cli -h "$host" -p "$port" cluster info | grep -q cluster_state:ok; then
  # CLUSTER MEET takes addresses, not names.
  addresses=""
  for node in $NODES; do
    h=${node%:*} p=${node#*:}
    until cli -h "$h" -p "$p" ping 2>/dev/null | grep -q PONG; do sleep 0.5; done
    addresses="$addresses $(getent hosts "$h" | awk '{print $1; exit}'):$p"
  done
  # shellcheck disable=SC2086
  cli --cluster create $addresses --cluster-replicas 1 --cluster-yes
fi
for node in $NODES; do
  until cli -h "${node%:*}" -p "${node#*:}" cluster info | grep -q cluster_state:ok; do sleep 0.5; done
done
echo "redis-cluster-init: the cluster of $NODES is ready"
