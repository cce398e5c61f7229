# Redis 7 from Debian, append-only file on.
ARG BASE=pdv/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
ENV REDIS_PORT=6379
CMD ["sh", "-c", "exec redis-server --bind ${REDIS_BIND:-0.0.0.0} --port $REDIS_PORT --protected-mode no --appendonly yes --dir /data"]
