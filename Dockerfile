FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pingstream pingstream
COPY engine engine
COPY agents agents
COPY tables tables
COPY api api
COPY schemas schemas
COPY probe probe
RUN pip install --no-cache-dir .
# a process that serves tenants' requests has no business being root
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin pingstream \
    && mkdir -p /data && chown pingstream:pingstream /data && chmod 0700 /data
USER pingstream
ENV PINGSTREAM_DATA_DIR=/data
VOLUME /data
