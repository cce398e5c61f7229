# PostgreSQL 15 from Debian, with logical replication on (the CDC stage needs it).
# The postgres account is made before the package (whose postinst then keeps it) with a
# fixed uid/gid (540, in the system range adduser accepts for an existing system user):
# deploy/make-secrets.sh makes postgres_admin and postgres_server_key owner-only (0600) for
# that uid. Change it here and in make-secrets.sh (POSTGRES_UID) together.
ARG BASE=pdv/debian:bookworm
FROM ${BASE}
ARG POSTGRES_UID=540
RUN groupadd --system --gid "$POSTGRES_UID" postgres \
 && useradd --system --uid "$POSTGRES_UID" --gid postgres --home-dir /var/lib/postgresql \
      --no-create-home --shell /bin/bash --comment "PostgreSQL administrator" postgres \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && test "$(id -u postgres):$(id -g postgres)" = "$POSTGRES_UID:$POSTGRES_UID" \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /run/postgresql
COPY deploy/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data PGPORT=5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
