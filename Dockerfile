# durabot's worker image: `docker compose up` runs PostgreSQL and two workers (see compose.yaml and the README).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/durabot
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && useradd --system --home-dir /var/lib/durabot --create-home durabot

USER durabot
# The outage journal is written here: mount a volume so it outlives the container.
WORKDIR /var/lib/durabot
VOLUME /var/lib/durabot
ENV ADMIN_LISTEN_HOST=0.0.0.0 LOG_FORMAT=json
EXPOSE 8090
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/healthz', timeout=2)"
STOPSIGNAL SIGTERM
CMD ["durabot", "run"]
