# The worker image the Helm chart (charts/dispatchflow) runs: `dispatchflow worker` by default,
# `dispatchflow topics apply` in the chart's hook job. Both read the topics.yaml installed with
# the package (contracts/topics.yaml, package data).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatchflow ./dispatchflow
COPY contracts ./contracts
COPY streams ./streams
COPY features ./features
COPY models ./models
COPY dispatch ./dispatch
COPY simulators ./simulators
COPY console ./console
RUN pip install . \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin dispatchflow \
    && mkdir -p /data \
    && chown dispatchflow /data

USER 10001
ENV DISPATCHFLOW_DATADIR=/data \
    DISPATCHFLOW_WEB_HOST=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["dispatchflow"]
CMD ["worker"]
