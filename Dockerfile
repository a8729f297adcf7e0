# bank-prober: the prober daemon (default), or `prober bank` / `prober demo`.
#   docker build -t bank-prober .
#   docker run -v $PWD/my-config:/etc/bank-prober:ro -v prober-state:/var/lib/bank-prober bank-prober
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian's Chromium for browser checks (Playwright drives it; its own browser downloads
# are never used).
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium \
    && rm -rf /var/lib/apt/lists/*

# The locked, hash-checked dependencies first (a layer that changes only with the lock),
# then the package itself without resolving anything again.
WORKDIR /src
COPY requirements/runtime.txt ./requirements/runtime.txt
RUN pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY prober ./prober
RUN pip install --no-deps . \
    && pip check \
    && rm -rf /src

# A fixed uid/gid, so that files and volumes can be granted to it from the host.
RUN groupadd --system --gid 10001 bank-prober \
    && useradd --system --uid 10001 --gid bank-prober --home-dir /var/lib/bank-prober \
        --shell /usr/sbin/nologin bank-prober \
    && install -d -o bank-prober -g bank-prober -m 0750 /var/lib/bank-prober \
    && install -d -m 0755 /etc/bank-prober

# Relative paths of the configuration (var/spool, var/state) land in the state volume.
WORKDIR /var/lib/bank-prober
VOLUME ["/var/lib/bank-prober"]
USER 10001:10001

# 9480 is [daemon] health_listen: /healthz, /status (and the status page with one
# process). With `run --workers N` the supervisor answers there for every worker
# (unhealthy while any worker does not answer 200, or restarts), and worker k listens
# on 9480 + k; so this HEALTHCHECK is true in both cases.
EXPOSE 9480
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9480/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["prober"]
CMD ["run", "-c", "/etc/bank-prober"]
