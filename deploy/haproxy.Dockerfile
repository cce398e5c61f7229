# HAProxy 2.6 from Debian before the API replicas (deploy/haproxy.cfg).
# The haproxy account is made before the package (whose postinst then keeps it) with a
# fixed uid/gid (542): deploy/make-secrets.sh makes lb_server_key owner-only (0600) for that
# uid. Change it here and in make-secrets.sh (HAPROXY_UID) together.
ARG BASE=pdv/debian:bookworm
FROM ${BASE}
ARG HAPROXY_UID=542
RUN groupadd --system --gid "$HAPROXY_UID" haproxy \
 && useradd --system --uid "$HAPROXY_UID" --gid haproxy --home-dir /var/lib/haproxy \
      --no-create-home --shell /usr/sbin/nologin haproxy \
 && apt-get update \
 && apt-get install -y --no-install-recommends haproxy \
 && test "$(id -u haproxy):$(id -g haproxy)" = "$HAPROXY_UID:$HAPROXY_UID" \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/haproxy.cfg /etc/haproxy/pdv.cfg
USER haproxy
ENV LB_BIND=0.0.0.0 LB_PORT=8443 API_PORT=8080
# Its certificate and key in one PEM, owner-only, made at each start from the secrets.
CMD ["sh", "-c", "umask 077 && cat /run/secrets/server_cert /run/secrets/server_key > /tmp/api.pem && exec haproxy -db -f /etc/haproxy/pdv.cfg"]
