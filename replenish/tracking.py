"""MLflow at the edge: experiment, run, metrics, artifacts, model registry.

Every call names its run explicitly (no reliance on MLflow's thread-local "active run"),
so tasks can run on any thread or worker.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import ColSpec, Schema
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

import models
from models.pyfunc import INPUT_DEFAULTS, as_model_input
from replenish.processes import is_dead, process_identity
from replenish.redaction import redacted, redacted_url
from replenish.settings import Settings

if TYPE_CHECKING:
    from models.ensemble.estimator import EnsemblePredictor
    from models.lstm.estimator import LSTMPredictor

CHAMPION = "champion"
REGISTRY_LOCK_SECONDS = 600  # a promotion scores one champion on one holdout: seconds, not minutes
PROCESS_TAG = "replenish.process"  # host:pid:start time of the process that owns a RUNNING run
CHALLENGER = "challenger"
# Tables logged above this many rows are Parquet: a forecast of 30,000 series is millions of rows.
TABLE_CSV_MAX_ROWS = 50_000
PARENT_RUN_TAG = "mlflow.parentRunId"  # how the MLflow UI nests a child run under its parent
# The experiment's kind: MLflow 3's UI opens an experiment without it in the GenAI view, not model training.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
# Exact pins recorded with the model: inferring them costs 11-18 s per log_model call.
MODEL_REQUIREMENTS = [
    f"{name}=={version}"
    for name, version in (
        ("torch", "2.13.0"),
        ("pytorch-lightning", "2.6.6"),
        ("pandas", pd.__version__),
        ("numpy", np.__version__),
        ("mlflow", mlflow.__version__),
    )
]
# The ensemble refits its baselines when it predicts.
ENSEMBLE_REQUIREMENTS = [
    f"{name}=={importlib.metadata.version(name)}"
    for name in ("statsforecast", "mlforecast", "lightgbm", "utilsforecast", "scipy")
]


def client_for(settings: Settings) -> MlflowClient:
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_registry_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_registry_uri)


def experiment_id_for(client: MlflowClient, settings: Settings) -> str:
    experiment = client.get_experiment_by_name(settings.tracking.experiment_name)
    if experiment is not None:
        if EXPERIMENT_KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return experiment.experiment_id
    try:
        return client.create_experiment(
            settings.tracking.experiment_name,
            artifact_location=settings.mlflow_artifact_location,
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )
    except MlflowException:  # created concurrently by another run
        return client.get_experiment_by_name(settings.tracking.experiment_name).experiment_id


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def data_fingerprint(frame: pd.DataFrame) -> str:
    """Order-independent hash of a table's content: the same rows give the same fingerprint.
    Works on raw, unvalidated tables too (mixed types, odd columns)."""
    row_hashes = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    header = ",".join(map(str, frame.columns)).encode()
    return hashlib.sha256(header + row_hashes.tobytes()).hexdigest()[:16]


def log_dataset(settings: Settings, run_id: str, name: str, source: str, digest: str, rows: int, context: str) -> None:
    """The run's input in MLflow's Datasets column (lineage): the data's name, content hash (data_fingerprint)
    and row count, from the file or folder `source`, or the generator it names (the synthetic data's)."""
    origin = (
        ("local", {"uri": Path(source).resolve().as_uri()})
        if Path(source).exists()
        else ("code", {"tags": {"generator": source}})
    )
    dataset = mlflow.entities.Dataset(
        name=name,
        digest=digest,
        source_type=origin[0],
        source=json.dumps(origin[1]),
        profile=json.dumps({"num_rows": rows}),
    )
    client_for(settings).log_inputs(
        run_id,
        datasets=[
            mlflow.entities.DatasetInput(dataset, tags=[mlflow.entities.InputTag(MLFLOW_DATASET_CONTEXT, context)])
        ],
    )


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def start_run(settings: Settings, run_name: str, tags: Mapping[str, str]) -> str:
    client = client_for(settings)
    # Settings and tags may hold server URIs and data paths with credentials in them; none reaches the store.
    tags = {**tags, PROCESS_TAG: process_identity()}
    run = client.create_run(
        experiment_id_for(client, settings),
        run_name=run_name,
        tags={key: redacted(key, value) for key, value in tags.items()},
    )
    client.log_batch(
        run.info.run_id,
        params=[
            mlflow.entities.Param(key, redacted(key, str(value))[:6000])
            for key, value in flatten(settings.model_dump(mode="json")).items()
        ],
    )
    return run.info.run_id


def start_child_run(settings: Settings, parent_run_id: str, run_name: str, tags: Mapping[str, str]) -> str:
    """A run nested under ``parent_run_id`` in the MLflow UI, sharing its tags (lineage)."""
    client = client_for(settings)
    parent = client.get_run(parent_run_id)
    inherited = {key: value for key, value in parent.data.tags.items() if not key.startswith("mlflow.")}
    run = client.create_run(
        parent.info.experiment_id, run_name=run_name, tags={**inherited, **tags, PARENT_RUN_TAG: parent_run_id}
    )
    return run.info.run_id


def run_url(settings: Settings, run_id: str) -> str:
    """The run's page in the MLflow UI (settings.mlflow_ui_url), credentials redacted: what Prefect's
    artifacts link to, instead of files on the disk of whichever machine ran the flow."""
    experiment_id = client_for(settings).get_run(run_id).info.experiment_id
    return f"{redacted_url(settings.mlflow_ui_url)}/#/experiments/{experiment_id}/runs/{run_id}"


def run_link(settings: Settings, run_id: str) -> str:
    """A markdown link to the run's page in the MLflow UI."""
    return f"[MLflow run {run_id[:8]}]({run_url(settings, run_id)})"


def log_metrics(settings: Settings, run_id: str, metrics: Mapping[str, float]) -> None:
    logged_at = int(time.time() * 1000)
    client_for(settings).log_batch(
        run_id,
        metrics=[
            mlflow.entities.Metric(key, float(value), timestamp=logged_at, step=0) for key, value in metrics.items()
        ],
    )


def log_figure(settings: Settings, run_id: str, figure: Figure, artifact_file: str) -> None:
    client_for(settings).log_figure(run_id, figure, artifact_file)


def log_table(settings: Settings, run_id: str, table: pd.DataFrame, artifact_file: str) -> str:
    """Log `table` as `artifact_file` (a .csv name): CSV, which the MLflow UI previews, up to
    TABLE_CSV_MAX_ROWS rows, Parquet (the same name ending .parquet) above, which keeps the dtypes and
    takes a fraction of the space.  Returns the artifact's path in the run."""
    artifact = Path(artifact_file)
    if len(table) > TABLE_CSV_MAX_ROWS:
        artifact = artifact.with_suffix(".parquet")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / artifact.name
        if artifact.suffix == ".parquet":
            table.to_parquet(path, index=False)
        else:
            table.to_csv(path, index=False)
        client_for(settings).log_artifact(
            run_id, str(path), str(artifact.parent) if artifact.parent != Path() else None
        )
    return artifact.as_posix()


def log_folder(settings: Settings, run_id: str, folder: Path, artifact_path: str) -> None:
    client_for(settings).log_artifacts(run_id, str(folder), artifact_path)


def set_tags(settings: Settings, run_id: str, tags: Mapping[str, str]) -> None:
    client = client_for(settings)
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def latest_run(settings: Settings, tags: Mapping[str, str]) -> mlflow.entities.Run | None:
    client = client_for(settings)
    query = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
    runs = client.search_runs(
        [experiment_id_for(client, settings)],
        filter_string=query,
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def load_table(
    settings: Settings,
    run_id: str,
    artifact_file: str,
    dtype: Mapping[str, Any] | None = None,
    parse_dates: list[str] | None = None,
) -> pd.DataFrame:
    """The table log_table logged as `artifact_file`: the CSV, or the Parquet it became when large (which
    keeps its own dtypes; `dtype` and `parse_dates` read the CSV alike)."""
    client, artifact = client_for(settings), Path(artifact_file)
    folder = artifact.parent.as_posix() if artifact.parent != Path() else None
    logged = {Path(entry.path).name for entry in client.list_artifacts(run_id, folder)}
    if artifact.name not in logged and artifact.with_suffix(".parquet").name in logged:
        artifact = artifact.with_suffix(".parquet")
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(run_id, artifact.as_posix(), folder)
        if artifact.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=dtype, parse_dates=parse_dates)


def version_metric(settings: Settings, version: str, metric: str) -> float | None:
    client = client_for(settings)
    model_version = client.get_model_version(settings.tracking.registered_model_name, version)
    return client.get_run(model_version.run_id).data.metrics.get(metric)


def run_tags(settings: Settings, run_id: str) -> dict[str, str]:
    return client_for(settings).get_run(run_id).data.tags


def end_run(settings: Settings, run_id: str, status: str) -> None:
    client_for(settings).set_terminated(run_id, status=status)


def fail_runs_of_dead_processes(settings: Settings) -> list[str]:
    """End as FAILED the RUNNING runs whose process has ended; returns their ids.

    A command killed with SIGKILL, or one that lost its tracking server, cannot end its own run."""
    client = client_for(settings)
    running = client.search_runs(
        [experiment_id_for(client, settings)], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    orphans = [run.info.run_id for run in running if is_dead(run.data.tags.get(PROCESS_TAG, ""))]
    for run_id in orphans:
        client.set_tag(run_id, "replenish.ended_by", "a later command: its process had ended")
        client.set_terminated(run_id, status="FAILED")
    return orphans


def log_forecaster(
    settings: Settings, run_id: str, predictor: LSTMPredictor | EnsemblePredictor, history_example: pd.DataFrame
) -> ModelVersion:
    """Log the predictor (the LSTM or the ensemble) as a pyfunc with signature and input example, and
    register a new version."""
    # Imported here, not at the top: torch and Lightning would cost a command that only validates seconds.
    from models.ensemble.estimator import EnsemblePredictor

    client_for(settings)
    model_input = as_model_input(history_example)
    ensemble = isinstance(predictor, EnsemblePredictor)
    with tempfile.TemporaryDirectory() as folder, mlflow.start_run(run_id=run_id):
        predictor.save(Path(folder) / "predictor")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(models.__file__).parent / ("ensemble" if ensemble else "lstm") / "mlflow_model.py"),
            artifacts={"predictor": str(Path(folder) / "predictor")},
            # Ship the model code with the model so it loads without this project installed.
            code_paths=[str(Path(models.__file__).parent)],
            signature=forecaster_signature(model_input, predictor.predict(model_input)),
            input_example=model_input,
            pip_requirements=[*MODEL_REQUIREMENTS, *(ENSEMBLE_REQUIREMENTS if ensemble else [])],
            registered_model_name=settings.tracking.registered_model_name,
        )
    return MlflowClient(registry_uri=settings.mlflow_registry_uri).get_model_version(
        settings.tracking.registered_model_name, str(info.registered_model_version)
    )


def tag_version(settings: Settings, version: ModelVersion, tags: Mapping[str, str]) -> None:
    """Tags on a registered version, readable from any alias that points at it (its contract, for one)."""
    client = client_for(settings)
    for key, value in tags.items():
        client.set_model_version_tag(settings.tracking.registered_model_name, version.version, key, value)


def forecaster_signature(model_input: pd.DataFrame, forecast: pd.DataFrame) -> ModelSignature:
    """Inferred from an example, with the columns a source may lack (SNAP, hierarchy) optional."""
    # MLflow hints on every integer column that a missing value would break it (mlflow/types/utils.py);
    # as_model_input fills or refuses missing values before any model sees them, so the hint never applies.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
        inferred = infer_signature(model_input, forecast)
    inputs = Schema(
        [
            ColSpec(column.type, column.name, required=column.name not in INPUT_DEFAULTS)
            for column in inferred.inputs.inputs
        ]
    )
    return ModelSignature(inputs=inputs, outputs=inferred.outputs)


def champion_version(settings: Settings) -> ModelVersion | None:
    try:
        return client_for(settings).get_model_version_by_alias(settings.tracking.registered_model_name, CHAMPION)
    except MlflowException:
        return None


def load_champion(settings: Settings) -> mlflow.pyfunc.PyFuncModel:
    client_for(settings)
    return mlflow.pyfunc.load_model(f"models:/{settings.tracking.registered_model_name}@{CHAMPION}")


def load_version(settings: Settings, version: str) -> mlflow.pyfunc.PyFuncModel:
    client_for(settings)
    return mlflow.pyfunc.load_model(f"models:/{settings.tracking.registered_model_name}/{version}")


@contextmanager
def registry_lock(settings: Settings, timeout_seconds: float = REGISTRY_LOCK_SECONDS) -> Iterator[None]:
    """One compare-and-promote at a time per registered model, across the processes of this host.

    An flock on a file named after the registry and the model: the kernel releases it when its
    holder dies, so a killed command never leaves the registry locked."""
    key = hashlib.sha256(f"{settings.mlflow_registry_uri}|{settings.tracking.registered_model_name}".encode())
    path = Path(tempfile.gettempdir()) / f"replenish-registry-{key.hexdigest()[:16]}.lock"
    deadline = time.monotonic() + timeout_seconds
    with open(path, "a", encoding="utf-8") as lock:
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the model registry {settings.mlflow_registry_uri} stayed locked for "
                        f"{timeout_seconds:.0f} s by another promotion ({path})"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


def decide_promotion(candidate_rmsse: float, champion_rmsse: float | None, metric: str) -> PromotionDecision:
    """Promote on a strictly better score; the reason quotes the score under its logged name, `metric`."""
    if champion_rmsse is None:
        return PromotionDecision(True, "first model: no champion yet")
    verdict = "beats" if candidate_rmsse < champion_rmsse else "does not beat"
    return PromotionDecision(
        candidate_rmsse < champion_rmsse, f"{metric} {candidate_rmsse:.4f} {verdict} champion's {champion_rmsse:.4f}"
    )


def promote_if_better(
    settings: Settings,
    version: ModelVersion,
    candidate_rmsse: float,
    champion_rmsse: Callable[[ModelVersion], float],
    metric: str,
) -> tuple[PromotionDecision, float | None]:
    """Compare ``version`` with the current champion and promote it if better, as one step.

    Under the registry lock the champion cannot change between reading and replacing it, so two
    registrations at once cannot both win as "first model". ``champion_rmsse`` scores the champion
    on the candidate's holdout (`metric` names the score); returns the decision and that score (None
    without a champion)."""
    with registry_lock(settings):
        champion = champion_version(settings)
        champion_score = None if champion is None else champion_rmsse(champion)
        decision = decide_promotion(candidate_rmsse, champion_score, metric)
        promote(settings, version, decision)
    return decision, champion_score


def promote(settings: Settings, version: ModelVersion, decision: PromotionDecision) -> None:
    """Every new version becomes the ``challenger``; only a better one becomes the ``champion``."""
    client = client_for(settings)
    name = settings.tracking.registered_model_name
    client.set_model_version_tag(name, version.version, "promotion_decision", decision.reason)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version.version)


def describe_version(
    settings: Settings,
    version: ModelVersion,
    holdout: Mapping[str, float],
    backtest: Mapping[str, float],
    decision: PromotionDecision,
) -> None:
    """The version's description in the registry: why it was or was not promoted, the holdout scores the
    decision compared and the backtest's scores, each under the name the training run logs it by."""

    def lines(metrics: Mapping[str, float]) -> list[str]:
        return [f"{key}: {value:.4f}" for key, value in sorted(metrics.items())]

    text = "\n".join(
        [
            f"Promotion: {decision.reason}.",
            "",
            "Holdout scores of the candidates (the registered models' forecasts of the last origin's horizon):",
            *lines(holdout),
            "",
            "Backtest scores (over all its origins):",
            *lines(backtest),
        ]
    )
    client_for(settings).update_model_version(
        settings.tracking.registered_model_name, version.version, description=text
    )
