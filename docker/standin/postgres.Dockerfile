# A stand-in for postgres:16, built by docker/smoke only where no container registry can be
# reached: Debian bookworm's PostgreSQL (15), started the way the official image starts
# (postgres-entrypoint: POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB on a new $PGDATA).
FROM debian:bookworm-slim
# The official image's uid and gid (999), made before the package would pick its own.
RUN groupadd --system --gid 999 postgres \
    && useradd --system --no-log-init --uid 999 --gid 999 --home-dir /var/lib/postgresql \
        --shell /bin/bash postgres \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15=15.* \
    && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15 /etc/postgresql/15 \
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
    && install -d -o postgres -g postgres -m 2775 /var/run/postgresql
COPY postgres-entrypoint /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
USER 999:999
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["postgres-entrypoint"]
CMD ["postgres"]
LABEL org.swanwatch.stand-in="postgres:16 built from Debian bookworm's postgresql-15 by docker/smoke"
