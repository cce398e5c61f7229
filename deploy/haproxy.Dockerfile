# HAProxy 2.6 from Debian before the API replicas (deploy/haproxy.cfg).
ARG BASE=pdv/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/haproxy.cfg /etc/haproxy/pdv.cfg
USER haproxy
ENV LB_BIND=0.0.0.0 LB_PORT=8443 API_PORT=8080
# Its certificate and key in one PEM, owner-only, made at each start from the secrets.
CMD ["sh", "-c", "umask 077 && cat /run/secrets/server_cert /run/secrets/server_key > /tmp/api.pem && exec haproxy -db -f /etc/haproxy/pdv.cfg"]
