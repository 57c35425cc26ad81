# syntax=docker/dockerfile:1
# StoreOps: one image for the control plane and the tenant runtimes.
#   docker build -t storeops:0.1.0 .
#   docker run --rm storeops:0.1.0 --help        (the entrypoint is `storeops`)
# Both stages use the same base image, so the virtualenv's interpreter links stay valid.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a wheel of the project, then it and its dependencies into a virtualenv ------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/storeops \
    && /opt/storeops/bin/pip install --upgrade pip
WORKDIR /src
COPY pyproject.toml README.md ./
COPY control_plane ./control_plane
COPY tenant_runtime ./tenant_runtime
COPY migrations ./migrations
# Page templates and static files (the NOC console), packaged as data with the wheel.
COPY branding ./branding
RUN /opt/storeops/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/storeops/bin/pip install /wheels/storeops-*.whl \
    && /opt/storeops/bin/python -m pip uninstall -y pip

# --- final: the virtualenv and the workflow template library; no compilers, no pip cache -
FROM ${PYTHON_IMAGE} AS final
LABEL org.opencontainers.image.title="storeops" \
      org.opencontainers.image.description="StoreOps control plane and tenant runtime" \
      org.opencontainers.image.licenses="Apache-2.0"
# A numeric, non-root user, so Kubernetes can check runAsNonRoot against the image.
RUN groupadd --system --gid 10001 storeops \
    && useradd --system --uid 10001 --gid 10001 \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin storeops
COPY --from=builder /opt/storeops /opt/storeops
COPY templates /app/templates
# Embedded state goes to /tmp (a writable volume when the root filesystem is read-only);
# the control plane listens on all interfaces; runtimes read the template library here.
ENV PATH=/opt/storeops/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STOREOPS_HOME=/tmp/storeops \
    STOREOPS_HOST=0.0.0.0 \
    STOREOPS_PORT=8000 \
    STOREOPS_RUNTIME_HOME=/tmp/storeops \
    STOREOPS_RUNTIME_TEMPLATES_DIR=/app/templates
WORKDIR /app
USER 10001:10001
# 8000: `storeops serve`; 8100: `storeops runtime serve --host 0.0.0.0`. No HEALTHCHECK:
# the same image also runs workers and one-shot migrations, which serve no HTTP; compose
# and the Helm charts probe /healthz and /readyz per process instead.
EXPOSE 8000 8100
ENTRYPOINT ["storeops"]
CMD ["--help"]
