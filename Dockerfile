# syntax=docker/dockerfile:1
# Tidegate in one image: the same `tidegate` command runs every part of the control plane
# (`worker`, `gateway`, `topics create`) and the execution plane (`connector NAME...`).
#   docker build -t tidegate:local .
#   docker run --rm -e TIDEGATE_KAFKA_BOOTSTRAP=kafka:9092 tidegate:local worker
# See docker-compose.yml (one machine) and deploy/helm/tidegate (Kubernetes).

ARG PYTHON_VERSION=3.11
ARG GO_VERSION=1.23

# The helm connector runs the helm CLI; built from its source release, as `make deps` does.
FROM golang:${GO_VERSION}-bookworm AS helm
ARG HELM_VERSION=v3.16.4
RUN GOBIN=/out GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"

# Wheels of Tidegate and all its dependencies, so the final image needs no compiler.
FROM python:${PYTHON_VERSION}-slim-bookworm AS wheels
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY schemas ./schemas
COPY streams ./streams
COPY agents ./agents
COPY qualitygate ./qualitygate
COPY connectors ./connectors
COPY gateway ./gateway
COPY bridge ./bridge
COPY cli ./cli
COPY readside ./readside
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim-bookworm
# No root at run time; one writable home for Faust's table stores and the gateway's SQLite history.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tidegate --create-home tidegate
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels tidegate
COPY --from=helm /out/helm /usr/local/bin/helm
ENV TIDEGATE_HOME=/var/lib/tidegate \
    TIDEGATE_DATA_DIR=/var/lib/tidegate/faust \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/tidegate
# The gateway (HTTP API, Bridge, Alertmanager webhook); Faust's own web server stays off.
EXPOSE 8080
ENTRYPOINT ["tidegate"]
CMD ["--help"]
