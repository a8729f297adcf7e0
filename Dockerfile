# bank-prober: the prober daemon (default), or `prober bank` / `prober demo`.
#   docker build -t bank-prober .
#   docker run -v $PWD/my-config:/etc/bank-prober:ro -v prober-state:/var/lib/bank-prober bank-prober
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY prober ./prober
RUN pip install . \
    && rm -rf /src

# The embedded example configuration (journeys against the simulated bank).
COPY config/simbank.toml /usr/share/bank-prober/simbank.toml

RUN groupadd --system bank-prober \
    && useradd --system --gid bank-prober --home-dir /var/lib/bank-prober --shell /usr/sbin/nologin bank-prober \
    && install -d -o bank-prober -g bank-prober -m 0750 /var/lib/bank-prober \
    && install -d -m 0755 /etc/bank-prober

# Relative paths of the configuration (var/spool, var/state) land in the state volume.
WORKDIR /var/lib/bank-prober
VOLUME ["/var/lib/bank-prober"]
USER bank-prober

EXPOSE 9480
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9480/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["prober"]
CMD ["run", "-c", "/etc/bank-prober"]
