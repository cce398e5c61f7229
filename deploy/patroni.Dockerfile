# A PostgreSQL 15 node managed by Patroni (Debian's patroni 3.0, etcd v3 as the DCS): the
# pdv/postgres image (the postgres account, uid 540) plus Patroni. deploy/patroni-node.sh
# writes Patroni's configuration from the environment and the secrets at each start.
ARG BASE=pdv/postgres
FROM ${BASE}
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends patroni python3-etcd curl \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/patroni && chown postgres:postgres /var/lib/postgresql/patroni
COPY deploy/patroni-node.sh /usr/local/bin/patroni-node.sh
USER postgres
ENTRYPOINT ["/usr/local/bin/patroni-node.sh"]
