# The gateway's image: the runtime only (gateway/, topologies/, config), so `gateway run`,
# `consent`, `rules check` and `explain`; the dev tools (local broker, demo, loadgen) are not in
# it (the load generator's image is devtools/loadgen.Dockerfile). Keys are never baked in: they
# come from the environment (GATEWAY_KEY_<SINK>) or a key file (GATEWAY_KEYS_FILE) at run time.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # _created series double the series count and nothing here reads them.
    PROMETHEUS_DISABLE_CREATED_SERIES=True \
    GATEWAY_CONFIG_DIR=/app/config \
    # In a container the scraper is outside: listen beyond loopback.
    GATEWAY_METRICS_HOST=0.0.0.0 \
    GATEWAY_METRICS_PORT=9108

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY topologies ./topologies
# The value guard's C scanner (gateway/_guardscan.c) is compiled on install: gcc for that
# step only, removed in the same layer.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app gateway
COPY config/gateway.yaml ./config/gateway.yaml
COPY config/sinks ./config/sinks
# faust keeps table state under the working directory.
RUN mkdir -p /app/state && chown gateway /app/state
WORKDIR /app/state

USER gateway
EXPOSE 9108
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GATEWAY_METRICS_PORT', '9108') + '/metrics', timeout=2)"]
ENTRYPOINT ["gateway"]
CMD ["run"]
