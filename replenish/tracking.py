"""MLflow at the edge: the experiment, its runs, and the model registry.

A flow opens its MLflow objects once from the settings: an `Experiment` starts its run, a `RunTracker`
records to it (metrics, tables, figures, tags, child runs) and a `ModelRegistry` holds the forecaster's
versions and aliases.  Each holds an `MlflowClient` (which pickles as its URIs) and names its run or model
on every call, with no reliance on MLflow's thread-local "active run", so tasks can run on any thread or
worker.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import io
import json
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stderr
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
from replenish.settings import DataSettings, Settings

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


def _client_for(settings: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_registry_uri)


def _experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if EXPERIMENT_KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return experiment.experiment_id
    try:
        return client.create_experiment(
            name, artifact_location=artifact_location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    except MlflowException:  # created concurrently by another run
        return client.get_experiment_by_name(name).experiment_id


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def dataset_name(data: DataSettings) -> str:
    """The data set's name in run names and the `dataset` tag: its file's or folder's stem."""
    return data.path.stem if data.path is not None else "synthetic"


def data_fingerprint(frame: pd.DataFrame) -> str:
    """Order-independent hash of a table's content: the same rows give the same fingerprint.
    Works on raw, unvalidated tables too (mixed types, odd columns)."""
    row_hashes = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    header = ",".join(map(str, frame.columns)).encode()
    return hashlib.sha256(header + row_hashes.tobytes()).hexdigest()[:16]


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def start_run(settings: Settings, run_name: str, tags: Mapping[str, str]) -> RunTracker:
    """A new run in the settings' experiment, the settings (redacted) its parameters."""
    return Experiment.open(settings).start_run(run_name, tags, settings.model_dump(mode="json"))


@dataclass(frozen=True)
class Experiment:
    """The MLflow experiment the runs are recorded in: where a run starts, and earlier runs are found."""

    client: MlflowClient
    experiment_id: str
    ui_url: str  # the MLflow UI its runs link to, credentials redacted

    @classmethod
    def open(cls, settings: Settings) -> Experiment:
        """The settings' experiment, created (and tagged as model training) if new."""
        client = _client_for(settings)
        experiment_id = _experiment_id(client, settings.tracking.experiment_name, settings.mlflow_artifact_location)
        return cls(client, experiment_id, redacted_url(settings.mlflow_ui_url))

    def run(self, run_id: str) -> RunTracker:
        """The tracker of a run already in this experiment."""
        return RunTracker(self.client, run_id, self.experiment_id, self.ui_url)

    def start_run(self, run_name: str, tags: Mapping[str, str], params: Mapping[str, Any] | None = None) -> RunTracker:
        """A new run, tagged with the identity of this process (PROCESS_TAG); ``params`` are logged
        flattened (``{"a": {"b": 1}}`` as ``a.b``)."""
        # Settings and tags may hold server URIs and data paths with credentials in them; none reaches the store.
        tags = {**tags, PROCESS_TAG: process_identity()}
        run = self.client.create_run(
            self.experiment_id,
            run_name=run_name,
            tags={key: redacted(key, value) for key, value in tags.items()},
        )
        if params:
            self.client.log_batch(
                run.info.run_id,
                params=[
                    mlflow.entities.Param(key, redacted(key, str(value))[:6000])
                    for key, value in flatten(params).items()
                ],
            )
        return self.run(run.info.run_id)

    def latest_run(self, tags: Mapping[str, str]) -> mlflow.entities.Run | None:
        """The newest run with all of ``tags``."""
        query = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"], max_results=1
        )
        return runs[0] if runs else None

    def fail_runs_of_dead_processes(self) -> list[str]:
        """End as FAILED the RUNNING runs whose process has ended; returns their ids.

        A command killed with SIGKILL, or one that lost its tracking server, cannot end its own run."""
        running = self.client.search_runs(
            [self.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
        )
        orphans = [run.info.run_id for run in running if is_dead(run.data.tags.get(PROCESS_TAG, ""))]
        for run_id in orphans:
            self.client.set_tag(run_id, "replenish.ended_by", "a later command: its process had ended")
            self.client.set_terminated(run_id, status="FAILED")
        return orphans


@dataclass(frozen=True)
class RunTracker:
    """One MLflow run, and what tasks record to it.  Built once per flow run (tasks.runs.start_tracking_run)
    and passed to the tasks: it pickles as its client's URIs and a few ids, so a task on another thread or
    worker records to the same run."""

    client: MlflowClient
    run_id: str
    experiment_id: str
    ui_url: str  # the MLflow UI's address, credentials redacted

    @property
    def experiment(self) -> Experiment:
        return Experiment(self.client, self.experiment_id, self.ui_url)

    @property
    def url(self) -> str:
        """The run's page in the MLflow UI (settings.mlflow_ui_url): what Prefect's artifacts link to,
        instead of files on the disk of whichever machine ran the flow."""
        return f"{self.ui_url}/#/experiments/{self.experiment_id}/runs/{self.run_id}"

    @property
    def link(self) -> str:
        """A markdown link to the run's page in the MLflow UI."""
        return f"[MLflow run {self.run_id[:8]}]({self.url})"

    def get_run(self) -> mlflow.entities.Run:
        """The run as the store holds it now: its info, tags, metrics and params."""
        return self.client.get_run(self.run_id)

    def start_child(self, run_name: str, tags: Mapping[str, str]) -> RunTracker:
        """A run nested under this one in the MLflow UI, sharing its tags (lineage)."""
        parent = self.get_run()
        inherited = {key: value for key, value in parent.data.tags.items() if not key.startswith("mlflow.")}
        run = self.client.create_run(
            parent.info.experiment_id, run_name=run_name, tags={**inherited, **tags, PARENT_RUN_TAG: self.run_id}
        )
        return RunTracker(self.client, run.info.run_id, parent.info.experiment_id, self.ui_url)

    def end(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        logged_at = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id,
            metrics=[
                mlflow.entities.Metric(key, float(value), timestamp=logged_at, step=0) for key, value in metrics.items()
            ],
        )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        self.client.log_figure(self.run_id, figure, artifact_file)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_folder(self, folder: Path, artifact_path: str) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    def log_table(self, table: pd.DataFrame, artifact_file: str) -> str:
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
            self.log_artifact(path, str(artifact.parent) if artifact.parent != Path() else None)
        return artifact.as_posix()

    def load_table(
        self,
        artifact_file: str,
        dtype: Mapping[str, Any] | None = None,
        parse_dates: list[str] | None = None,
    ) -> pd.DataFrame:
        """The table log_table logged as `artifact_file`: the CSV, or the Parquet it became when large (which
        keeps its own dtypes; `dtype` and `parse_dates` read the CSV alike)."""
        artifact = Path(artifact_file)
        folder = artifact.parent.as_posix() if artifact.parent != Path() else None
        logged = {Path(entry.path).name for entry in self.client.list_artifacts(self.run_id, folder)}
        if artifact.name not in logged and artifact.with_suffix(".parquet").name in logged:
            artifact = artifact.with_suffix(".parquet")
        with tempfile.TemporaryDirectory() as folder:
            path = self.client.download_artifacts(self.run_id, artifact.as_posix(), folder)
            if artifact.suffix == ".parquet":
                return pd.read_parquet(path)
            return pd.read_csv(path, dtype=dtype, parse_dates=parse_dates)

    def log_dataset(self, name: str, source: str, digest: str, rows: int, context: str) -> None:
        """The run's input in MLflow's Datasets column (lineage): the data's name, content hash
        (data_fingerprint) and row count, from the file or folder `source`, or the generator it names (the
        synthetic data's)."""
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
        self.client.log_inputs(
            self.run_id,
            datasets=[
                mlflow.entities.DatasetInput(dataset, tags=[mlflow.entities.InputTag(MLFLOW_DATASET_CONTEXT, context)])
            ],
        )


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


# What mlflow.register_model prints (its eprint, straight to stderr) at every registration; the
# registration task logs the version it registered itself.
REGISTRATION_NOTICES = re.compile(
    r"(Successfully registered model |Registered model .* already exists|Created version )"
)


@contextmanager
def registration_notices_dropped() -> Iterator[None]:
    """MLflow's registration notices kept off the console.  Anything else written to stderr meanwhile (a
    warning, an error) still reaches it, once the call is done."""
    captured = io.StringIO()
    try:
        with redirect_stderr(captured):
            yield
    finally:
        lines = captured.getvalue().splitlines(keepends=True)
        sys.stderr.write("".join(line for line in lines if not REGISTRATION_NOTICES.match(line)))


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


@dataclass(frozen=True)
class ModelRegistry:
    """The registered model the forecasters are versions of: its versions, their tags and descriptions,
    the ``champion`` and ``challenger`` aliases, and the lock a promotion holds."""

    client: MlflowClient
    name: str  # the registered model's (settings.tracking.registered_model_name)
    uri: str  # the registry's: it names the promotion lock

    @classmethod
    def open(cls, settings: Settings) -> ModelRegistry:
        return cls(_client_for(settings), settings.tracking.registered_model_name, settings.mlflow_registry_uri)

    def _fluent_api_on_this_registry(self) -> None:
        """MLflow's fluent functions (log_model, register_model, load_model of a models:/ URI) read the
        process-wide URIs, not a client's."""
        mlflow.set_tracking_uri(self.client.tracking_uri)
        mlflow.set_registry_uri(self.uri)

    def champion(self) -> ModelVersion | None:
        try:
            return self.client.get_model_version_by_alias(self.name, CHAMPION)
        except MlflowException:
            return None

    def load_champion(self) -> mlflow.pyfunc.PyFuncModel:
        self._fluent_api_on_this_registry()
        return mlflow.pyfunc.load_model(f"models:/{self.name}@{CHAMPION}")

    def load_version(self, version: str) -> mlflow.pyfunc.PyFuncModel:
        self._fluent_api_on_this_registry()
        return mlflow.pyfunc.load_model(f"models:/{self.name}/{version}")

    def version_metric(self, version: str, metric: str) -> float | None:
        """The metric ``metric`` of the run that logged ``version``."""
        model_version = self.client.get_model_version(self.name, version)
        return self.client.get_run(model_version.run_id).data.metrics.get(metric)

    def log_forecaster(
        self, run: RunTracker, predictor: LSTMPredictor | EnsemblePredictor, history_example: pd.DataFrame
    ) -> ModelVersion:
        """Log the predictor (the LSTM or the ensemble) to ``run`` as a pyfunc with signature and input
        example, and register it as a new version."""
        # Imported here, not at the top: torch and Lightning would cost a command that only validates seconds.
        from models.ensemble.estimator import EnsemblePredictor

        self._fluent_api_on_this_registry()
        model_input = as_model_input(history_example)
        ensemble = isinstance(predictor, EnsemblePredictor)
        with tempfile.TemporaryDirectory() as folder, mlflow.start_run(run_id=run.run_id):
            predictor.save(Path(folder) / "predictor")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(
                    Path(models.__file__).parent / ("ensemble" if ensemble else "lstm") / "mlflow_model.py"
                ),
                artifacts={"predictor": str(Path(folder) / "predictor")},
                # Ship the model code with the model so it loads without this project installed.
                code_paths=[str(Path(models.__file__).parent)],
                signature=forecaster_signature(model_input, predictor.predict(model_input)),
                input_example=model_input,
                pip_requirements=[*MODEL_REQUIREMENTS, *(ENSEMBLE_REQUIREMENTS if ensemble else [])],
            )
        with registration_notices_dropped():
            registered = mlflow.register_model(info.model_uri, self.name)
        return self.client.get_model_version(self.name, str(registered.version))

    def tag_version(self, version: ModelVersion, tags: Mapping[str, str]) -> None:
        """Tags on a registered version, readable from any alias that points at it (its contract, for one)."""
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version.version, key, value)

    def describe_version(
        self,
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
        self.client.update_model_version(self.name, version.version, description=text)

    def promote(self, version: ModelVersion, decision: PromotionDecision) -> None:
        """Every new version becomes the ``challenger``; only a better one becomes the ``champion``."""
        self.client.set_model_version_tag(self.name, version.version, "promotion_decision", decision.reason)
        self.client.set_registered_model_alias(self.name, CHALLENGER, version.version)
        if decision.promote:
            self.client.set_registered_model_alias(self.name, CHAMPION, version.version)

    @contextmanager
    def lock(self, timeout_seconds: float = REGISTRY_LOCK_SECONDS) -> Iterator[None]:
        """One compare-and-promote at a time per registered model, across the processes of this host.

        An flock on a file named after the registry and the model: the kernel releases it when its
        holder dies, so a killed command never leaves the registry locked."""
        key = hashlib.sha256(f"{self.uri}|{self.name}".encode())
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
                            f"the model registry {self.uri} stayed locked for "
                            f"{timeout_seconds:.0f} s by another promotion ({path})"
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def promote_if_better(
        self,
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
        with self.lock():
            champion = self.champion()
            champion_score = None if champion is None else champion_rmsse(champion)
            decision = decide_promotion(candidate_rmsse, champion_score, metric)
            self.promote(version, decision)
        return decision, champion_score
