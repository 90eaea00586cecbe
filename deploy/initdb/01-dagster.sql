-- The Dagster instance storage lives in its own database beside the warehouse.
CREATE DATABASE dagster OWNER ntsb;
