#!/bin/sh
# A Redis Cluster node: TLS only (clients, replication and the cluster bus), the ACL users
# of the redis_acl secret, its hostname announced (clients verify it against the
# certificate). The replication password (the administrator's) goes into an owner-only
# configuration file, never onto a command line.
set -eu
umask 077
conf=/data/redis-node.conf
{
  echo "bind ${REDIS_BIND:-0.0.0.0}"
  echo "port 0"
  echo "tls-port ${REDIS_PORT:-6379}"
  echo "tls-cert-file /run/secrets/server_cert"
  echo "tls-key-file /run/secrets/server_key"
  echo "tls-ca-cert-file /run/secrets/ca_cert"
  echo "tls-auth-clients no"
  echo "tls-replication yes"
  echo "tls-cluster yes"
  echo "aclfile /run/secrets/redis_acl"
  echo "protected-mode yes"
  echo "appendonly yes"
  echo "dir /data"
  echo "cluster-enabled yes"
  echo "cluster-config-file /data/nodes.conf"
  echo "cluster-node-timeout ${CLUSTER_NODE_TIMEOUT:-5000}"
  echo "cluster-announce-hostname ${NODE_HOST:?NODE_HOST: the name clients reach this node by}"
  echo "cluster-preferred-endpoint-type hostname"
  echo "masteruser default"
  printf 'masterauth %s\n' "$(cat /run/secrets/redis_admin)"
} >"$conf"
exec redis-server "$conf"
