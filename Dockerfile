# One image for the operator (`feast-lineage run`, the default) and its runner Jobs
# (`feast-lineage runner apply|materialize`): this package with Feast and MLflow, and git.
#   docker build -t feast-lineage-operator:0.1.0 .
# The base is the official Python image at an exact release; where your mirror lets you, pin its
# digest as well: --build-arg PYTHON_IMAGE=python:3.11.11-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
# Bytecode is compiled here: at run time the root filesystem is read-only.
RUN python -m venv /opt/feast-lineage \
    && /opt/feast-lineage/bin/pip install --no-cache-dir . \
    && /opt/feast-lineage/bin/python -m compileall -q /opt/feast-lineage

FROM ${PYTHON_IMAGE}
# git fetches Git-sourced feature repos; ca-certificates verifies https remotes and MLflow servers.
# Debian's security updates replace exact package versions, so they are not pinned: the base tag
# pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 feast-lineage \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin feast-lineage
COPY --from=build /opt/feast-lineage /opt/feast-lineage
# Nothing is written outside /tmp (an emptyDir in the chart; runner pods use /workspace).
ENV PATH=/opt/feast-lineage/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
WORKDIR /tmp
USER 10001:10001
ENTRYPOINT ["feast-lineage"]
CMD ["run"]
