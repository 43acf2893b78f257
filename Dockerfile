FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pingstream pingstream
COPY engine engine
COPY agents agents
COPY tables tables
COPY api api
COPY schemas schemas
RUN pip install --no-cache-dir .
ENV PINGSTREAM_DATA_DIR=/data
VOLUME /data
