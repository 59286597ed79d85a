"""Train the LSTM (train_lstm): in the calling process, or in a process of its own,
`python -m models.lstm.train_process --features F --training T --out D`.

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

from models.lstm.config import LSTMConfig
from models.lstm.estimator import LSTMEstimator, LSTMPredictor, training_curves_logger

TRAINING_SUMMARY = "training.json"


@dataclass(frozen=True)
class TrainedForecaster:
    predictor: LSTMPredictor
    fit_seconds: float
    windows_per_epoch: int
    epochs: int
    resumed_from_epoch: int | None

    @property
    def windows_per_second(self) -> float:
        return self.windows_per_epoch * self.epochs / self.fit_seconds if self.fit_seconds > 0 else float("nan")


@dataclass(frozen=True)
class LSTMTraining:
    """One fit: the estimator's arguments, and where its checkpoints and curves go."""

    config: LSTMConfig
    horizon: int
    quantiles: tuple[float, ...]
    seed: int
    checkpoints: Path
    resume: bool  # go on from the last checkpoint in `checkpoints`
    tracking_uri: str
    log_run_id: str | None  # the MLflow run that receives the training curves, if any

    def estimator(self) -> LSTMEstimator:
        return LSTMEstimator(
            self.config,
            self.horizon,
            self.quantiles,
            self.seed,
            self.checkpoints,
            logger=training_curves_logger(self.tracking_uri, self.log_run_id),
            resume=self.resume,
        )


def train_lstm(train: pd.DataFrame, fit: LSTMTraining) -> TrainedForecaster:
    """Fit the LSTM on `train` (a feature frame): here, or with a data-parallel (DDP) strategy in a
    process of its own."""
    if fit.config.data_parallel:
        return train_in_own_process(train, fit)
    started = time.perf_counter()
    estimator = fit.estimator()
    predictor = estimator.fit(train)
    return TrainedForecaster(
        predictor,
        time.perf_counter() - started,
        estimator.windows_per_epoch,
        estimator.epochs_run,
        estimator.resumed_from_epoch,
    )


def train_in_own_process(train: pd.DataFrame, fit: LSTMTraining) -> TrainedForecaster:
    """Data-parallel (DDP) training: Lightning re-launches the running script per device, so it
    must be a script of its own, not this task's process."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        train.to_parquet(work / "features.parquet", index=False)
        (work / "training.json").write_text(json.dumps({**asdict(fit), "checkpoints": str(fit.checkpoints)}))
        command = [
            sys.executable,
            "-m",
            "models.lstm.train_process",
            "--features",
            str(work / "features.parquet"),
            "--training",
            str(work / "training.json"),
            "--out",
            str(work / "predictor"),
        ]
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"training process failed ({finished.returncode}):\n{finished.stderr[-4000:]}")
        summary = json.loads((work / "predictor" / TRAINING_SUMMARY).read_text())
        return TrainedForecaster(
            LSTMPredictor.load(work / "predictor"),
            time.perf_counter() - started,
            summary["windows_per_epoch"],
            summary["epochs"],
            summary["resumed_from_epoch"],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features", type=Path, required=True, help="Parquet file of the training features")
    parser.add_argument("--training", type=Path, required=True, help="JSON of the LSTMTraining fields")
    parser.add_argument("--out", type=Path, required=True, help="folder for the fitted predictor")
    args = parser.parse_args()

    fields = json.loads(args.training.read_text())
    fit = LSTMTraining(
        **{
            **fields,
            "config": LSTMConfig(**fields["config"]),
            "quantiles": tuple(fields["quantiles"]),
            "checkpoints": Path(fields["checkpoints"]),
        }
    )
    estimator = fit.estimator()
    predictor = estimator.fit(pd.read_parquet(args.features))
    if estimator.is_global_zero:
        predictor.save(args.out)
        (args.out / TRAINING_SUMMARY).write_text(
            json.dumps(
                {
                    "windows_per_epoch": estimator.windows_per_epoch,
                    "epochs": estimator.epochs_run,
                    "resumed_from_epoch": estimator.resumed_from_epoch,
                }
            )
        )


if __name__ == "__main__":
    main()
