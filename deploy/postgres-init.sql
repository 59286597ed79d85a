-- One database per server, both owned by the compose stack's PostgreSQL user.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
CREATE DATABASE mlflow_auth;
