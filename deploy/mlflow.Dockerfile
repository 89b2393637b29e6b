# MLflow tracking server for docker-compose.yml: the official image plus the two drivers it
# does not ship: psycopg2 for the Postgres backend store, boto3 for the S3 (MinIO) artifact
# store. A two-line build rather than `pip install` in the container command: the server then
# starts without reaching a package index, and restarts are instant.
# MLFLOW_VERSION matches the client pyproject.toml resolves (3.18.0); keep server >= client.
ARG MLFLOW_VERSION=3.18.0
FROM ghcr.io/mlflow/mlflow:v${MLFLOW_VERSION}
RUN pip install --no-cache-dir "psycopg2-binary>=2.9,<3" "boto3>=1.34,<2"
