# Redis 7 from Debian (also a Redis Cluster node: deploy/redis-node.sh): TLS only (the server_cert/server_key secrets), ACL users from the
# redis_acl secret (hashed passwords; nothing without one), protected mode, append-only.
# The redis account is made before the package (whose postinst then keeps it) with a fixed
# uid/gid (541): deploy/make-secrets.sh makes redis_acl, redis_admin and redis_server_key
# owner-only (0600) for that uid. Change it here and in make-secrets.sh (REDIS_UID) together.
ARG BASE=pdv/debian:bookworm
FROM ${BASE}
ARG REDIS_UID=541
RUN groupadd --system --gid "$REDIS_UID" redis \
 && useradd --system --uid "$REDIS_UID" --gid redis --home-dir /var/lib/redis --no-create-home \
      --shell /usr/sbin/nologin redis \
 && apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && test "$(id -u redis):$(id -g redis)" = "$REDIS_UID:$REDIS_UID" \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
COPY deploy/redis-node.sh deploy/redis-cluster-init.sh /usr/local/bin/
USER redis
WORKDIR /data
ENV REDIS_PORT=6379
CMD ["sh", "-c", "exec redis-server --bind ${REDIS_BIND:-0.0.0.0} --port 0 --tls-port $REDIS_PORT --tls-cert-file /run/secrets/server_cert --tls-key-file /run/secrets/server_key --tls-ca-cert-file /run/secrets/ca_cert --tls-auth-clients no --aclfile /run/secrets/redis_acl --protected-mode yes --appendonly yes --dir /data"]
