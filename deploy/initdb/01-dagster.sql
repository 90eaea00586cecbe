-- Beside the warehouse (database ntsb): the Dagster instance storage and the MLflow
-- tracking store and model registry, each in a database of its own.
CREATE DATABASE dagster OWNER ntsb;
CREATE DATABASE mlflow OWNER ntsb;
