# etcd 3.4 from Debian: the DCS of the Patroni clusters (deploy/compose.patroni.yaml).
ARG BASE=pdv/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends etcd-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/etcd && chown nobody /var/lib/etcd
USER nobody
ENTRYPOINT ["etcd"]
