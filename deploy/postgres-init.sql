-- Runs once, when the postgres container initialises an empty data volume
-- (mounted into /docker-entrypoint-initdb.d by docker-compose.yml; executed by psql as
-- $POSTGRES_USER). One server, two databases: Dagster's instance storage and MLflow's
-- tracking/registry store. Idempotent, so a POSTGRES_DB of either name does not break it.
SELECT 'CREATE DATABASE dagster' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dagster')\gexec
SELECT 'CREATE DATABASE mlflow'  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow')\gexec
