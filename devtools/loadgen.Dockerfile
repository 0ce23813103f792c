# The load generator's image for `docker compose --profile load`: the runtime plus devtools/.
# Its own build context rules are devtools/loadgen.Dockerfile.dockerignore (BuildKit reads the
# ignore file named after the Dockerfile); the gateway's image (Dockerfile) has no devtools.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_CONFIG_DIR=/app/config

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY topologies ./topologies
COPY devtools ./devtools
# The value guard's C scanner (gateway/_guardscan.c) is compiled on install: gcc for that
# step only, removed in the same layer.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app loadgen
COPY config/gateway.yaml ./config/gateway.yaml
COPY config/sinks ./config/sinks

USER loadgen
ENTRYPOINT ["gateway"]
CMD ["loadgen"]
