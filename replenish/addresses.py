"""Where `replenish ui` serves the MLflow UI by default, and so where links to runs point on the embedded
store.  Its own module: the CLI reads it without importing the settings (and pandas with them)."""

MLFLOW_UI_HOST = "127.0.0.1"
MLFLOW_UI_PORT = 5000
DEFAULT_MLFLOW_UI_URL = f"http://{MLFLOW_UI_HOST}:{MLFLOW_UI_PORT}"
