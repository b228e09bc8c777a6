FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY market ./market
COPY ledger ./ledger
COPY matching ./matching
COPY static ./static
RUN pip install --no-cache-dir . && useradd --create-home eldercare && mkdir -p /data && chown eldercare /data
USER eldercare
ENV ELDERCARE_DATA_DIR=/data ELDERCARE_HOST=0.0.0.0 ELDERCARE_STATIC_DIR=/app/static
EXPOSE 8000
CMD ["eldercare", "serve"]
