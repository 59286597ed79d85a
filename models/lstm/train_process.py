"""Train the LSTM (train_lstm): in the calling process, or in a process of its own,
`python -m models.lstm.train_process --features F --config C --out D`.

Lightning's DDP re-launches the running script once per device, so data-parallel training cannot
run inside a Prefect task's process; train_lstm starts this module instead. Rank 0 saves the
predictor to ``--out``, with ``training.json`` (windows per epoch, epochs, resumed epoch);
only rank 0 logs to MLflow.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from models.lstm.estimator import LSTMConfig, LSTMEstimator, LSTMPredictor, training_curves_logger

TRAINING_SUMMARY = "training.json"


@dataclass(frozen=True)
class TrainedForecaster:
    predictor: LSTMPredictor
    fit_seconds: float
    training_windows: int  # per epoch
    epochs: int
    resumed_from_epoch: int | None

    @property
    def windows_per_second(self) -> float:
        return self.training_windows * self.epochs / self.fit_seconds if self.fit_seconds > 0 else float("nan")


def train_lstm(
    train: pd.DataFrame, config: LSTMConfig, checkpoints: Path, resume: bool, tracking_uri: str, log_run_id: str | None
) -> TrainedForecaster:
    """Fit the LSTM on `train` (a feature frame), checkpointing to `checkpoints` (resuming from its last
    epoch when asked), the curves to the MLflow run `log_run_id` if given: here, or with a data-parallel
    (DDP) strategy in a process of its own."""
    if config.strategy.startswith("ddp"):
        return train_in_own_process(train, config, checkpoints, resume, tracking_uri, log_run_id)
    started = time.perf_counter()
    estimator = LSTMEstimator(
        config, checkpoints, logger=training_curves_logger(tracking_uri, log_run_id), resume=resume
    )
    predictor = estimator.fit(train)
    return TrainedForecaster(
        predictor,
        time.perf_counter() - started,
        estimator.training_windows,
        estimator.epochs_run,
        estimator.resumed_from_epoch,
    )


def train_in_own_process(
    train: pd.DataFrame, config: LSTMConfig, checkpoints: Path, resume: bool, tracking_uri: str, log_run_id: str | None
) -> TrainedForecaster:
    """Data-parallel (DDP) training: Lightning re-launches the running script per device, so it
    must be a script of its own, not this task's process."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        train.to_parquet(work / "features.parquet", index=False)
        (work / "config.json").write_text(json.dumps(asdict(config)))
        command = [
            sys.executable,
            "-m",
            "models.lstm.train_process",
            "--features",
            str(work / "features.parquet"),
            "--config",
            str(work / "config.json"),
            "--out",
            str(work / "predictor"),
            "--checkpoints",
            str(checkpoints),
            *(["--resume"] if resume else []),
        ]
        if log_run_id:
            command += ["--mlflow-tracking-uri", tracking_uri, "--mlflow-run-id", log_run_id]
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"training process failed ({finished.returncode}):\n{finished.stderr[-4000:]}")
        fit = json.loads((work / "predictor" / TRAINING_SUMMARY).read_text())
        return TrainedForecaster(
            LSTMPredictor.load(work / "predictor"),
            time.perf_counter() - started,
            fit["training_windows"],
            fit["epochs"],
            fit["resumed_from_epoch"],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features", type=Path, required=True, help="Parquet file of the training features")
    parser.add_argument("--config", type=Path, required=True, help="JSON of LSTMConfig fields")
    parser.add_argument("--out", type=Path, required=True, help="folder for the fitted predictor")
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--resume", action="store_true", help="go on from the last checkpoint in --checkpoints")
    parser.add_argument("--mlflow-tracking-uri")
    parser.add_argument("--mlflow-run-id")
    args = parser.parse_args()

    fields = json.loads(args.config.read_text())
    config = LSTMConfig(**{**fields, "quantiles": tuple(fields["quantiles"])})
    logger = training_curves_logger(args.mlflow_tracking_uri, args.mlflow_run_id)
    estimator = LSTMEstimator(config, args.checkpoints, logger=logger, resume=args.resume)
    predictor = estimator.fit(pd.read_parquet(args.features))
    if estimator.is_global_zero:
        predictor.save(args.out)
        (args.out / TRAINING_SUMMARY).write_text(
            json.dumps(
                {
                    "training_windows": estimator.training_windows,
                    "epochs": estimator.epochs_run,
                    "resumed_from_epoch": estimator.resumed_from_epoch,
                }
            )
        )


if __name__ == "__main__":
    main()
