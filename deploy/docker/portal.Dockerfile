# syntax=docker/dockerfile:1
# The portal, the web front for volunteers and initiatives: `python -m lotse_portal` on port 8000.
# It needs no Kafka: it serves pages and calls the services' HTTP APIs and the OpenID provider.
# Build from the repository root (the context must hold the workspace and uv.lock):
#   docker build -f deploy/docker/portal.Dockerfile -t lotse/portal:dev .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# Builder: resolve exactly what uv.lock says for this one package, into /app/.venv.
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# The workspace's metadata first: the dependency layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
COPY contracts/pyproject.toml contracts/
COPY runtime/pyproject.toml runtime/
COPY deploy/devstack/pyproject.toml deploy/devstack/
COPY cli/pyproject.toml cli/
COPY services/registry/pyproject.toml services/registry/
COPY services/matching/pyproject.toml services/matching/
COPY services/notifications/pyproject.toml services/notifications/
COPY services/portal/pyproject.toml services/portal/
RUN uv sync --frozen --no-dev --no-install-workspace --package lotse-portal
# Then the code of this package and of the workspace packages it depends on, installed (not editable) into the venv.
COPY contracts/src contracts/src
COPY runtime/src runtime/src
COPY services/portal/src services/portal/src
RUN uv sync --frozen --no-dev --no-editable --package lotse-portal

# Final stage: the interpreter of the same base image, the venv, nothing else (no uv, no sources, no build tools).
FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="lotse-portal" \
      org.opencontainers.image.description="Lotse portal: the web front for volunteers and initiatives (OpenID Connect sign-in)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="Lotse" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
RUN groupadd --system --gid 10001 lotse \
 && useradd --system --uid 10001 --gid lotse --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lotse
COPY --from=builder /app/.venv /app/.venv
# In a container the pages are served on every interface (the portal defaults to loopback).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOTSE_HTTP_HOST=0.0.0.0 \
    LOTSE_HTTP_PORT=8000
WORKDIR /app
# Numeric ids, so that Kubernetes can verify runAsNonRoot.
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# /health answers while the process is alive; readiness (/ready) is for the orchestrator's routing.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["python", "-m", "lotse_portal"]
