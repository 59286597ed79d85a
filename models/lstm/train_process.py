"""Train the LSTM in a process of its own: `python -m models.lstm.train_process --features F --config C --out D`.

Lightning's DDP re-launches the running script once per device, so data-parallel training cannot
run inside a Prefect task's process; the task starts this module instead. Rank 0 saves the
predictor to ``--out``, with ``training.json`` (windows per epoch, epochs, resumed epoch);
only rank 0 logs to MLflow.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from models.lstm.estimator import LSTMConfig, LSTMEstimator, training_curves_logger

TRAINING_SUMMARY = "training.json"


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
