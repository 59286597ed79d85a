"""The feedback loop: a regime shift is detected, retrained and promoted; stable demand is left alone."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.settings import load_settings
from tests.conftest import invoke_cli, set_options

pytestmark = pytest.mark.slow
SHIFT_DAY = 150  # the champion is trained and plans on the days before; actuals after it arrive later
NEW_WEEKLY_PROFILE = np.array([2.5, 2.0, 1.0, 0.6, 0.4, 0.3, 0.2])
COLUMNS = ["item_id", "store_id", "date", "units", "price", "promo"]


def sales_files(folder: Path, shifted: bool) -> tuple[Path, Path]:
    """Sales known when the champion was trained, and sales 180 days later."""
    sales = generate_synthetic(SyntheticConfig(n_items=10, n_stores=2, n_days=330)).sales
    sales["date"] = pd.to_datetime(sales["date"])
    day = (sales["date"] - sales["date"].min()).dt.days
    if shifted:
        # Demand doubles and moves to the start of the week: the mean scaler alone cannot absorb that.
        profile = NEW_WEEKLY_PROFILE / NEW_WEEKLY_PROFILE.mean()
        factor = np.where(day >= SHIFT_DAY, 2.0 * profile[sales["date"].dt.day_of_week], 1.0)
        sales["units"] = np.rint(sales["units"] * factor).astype(int)
    before, after = folder / "sales_before.csv", folder / "sales_after.csv"
    sales.loc[day < SHIFT_DAY, COLUMNS].to_csv(before, index=False)
    sales[COLUMNS].to_csv(after, index=False)
    return before, after


def test_stable_demand_is_kept_then_a_regime_shift_is_retrained_and_promoted(tmp_path: Path) -> None:
    """One champion, trained and planning on the days before the shift, is monitored twice: on sales
    that kept their pattern, and then on the same sales with the regime shift."""
    (tmp_path / "stable").mkdir(), (tmp_path / "shifted").mkdir()
    before, stable = sales_files(tmp_path / "stable", shifted=False)
    shifted_before, shifted = sales_files(tmp_path / "shifted", shifted=True)
    assert shifted_before.read_bytes() == before.read_bytes()  # the shift starts after the champion's data
    overrides = [
        f"work_dir={tmp_path / 'state'}",
        f"output_dir={tmp_path / 'out'}",
        # A small network, two epochs: the shift doubles demand, which any retrained model sees.
        "forecast.lstm.max_epochs=2",
        "forecast.lstm.hidden_size=16",
        "forecast.lstm.context_length=28",
        "forecast.backtest_origins=2",
        "forecast.baselines=[seasonal_naive]",
        "planning.n_scenarios=50",
        "planning.kpi_demand_paths=100",
    ]
    outputs = []
    for command, data in (("train", before), ("plan", before), ("monitor", stable), ("monitor", shifted)):
        exit_code, output, errors = invoke_cli(command, "--data", str(data), *set_options(overrides))
        assert exit_code == 0, output + errors[-3000:]
        outputs.append(output)
    settings = load_settings(overrides=overrides)
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    name = settings.tracking.registered_model_name
    experiment = client.get_experiment_by_name(settings.tracking.experiment_name)
    kept, retrained = sorted(
        client.search_runs([experiment.experiment_id], "tags.job = 'monitor'"), key=lambda run: run.info.start_time
    )

    # Stable demand: the champion stays, and nothing is trained.
    assert "Monitoring finished: keep the champion" in outputs[2]
    assert kept.data.tags["retrain"] == "False"
    assert kept.data.metrics["recent_scored_days"] == 28

    # The regime shift: detected, retrained, and the new model promoted.
    assert "Monitoring finished: retrain" in outputs[3]
    assert [str(v.version) for v in client.search_model_versions(f"name='{name}'")] == ["2", "1"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    new_champion = client.get_model_version(name, "2")
    decision = new_champion.tags["promotion_decision"]
    metric, candidate, old = re.findall(r"(\w+) (\d+\.\d+) beats champion's (\d+\.\d+)", decision)[0]
    assert float(candidate) < float(old)  # the new champion's error on the recent window is lower than the old one's
    # The reason quotes the score under the name, and with the value, that the retraining run logged.
    assert metric == f"holdout_pyfunc_{new_champion.tags['forecaster']}_rmsse"
    assert f"{client.get_run(new_champion.run_id).data.metrics[metric]:.4f}" == candidate
    assert new_champion.tags[metric] == candidate and f"{metric}: {candidate}" in new_champion.description
    assert retrained.data.tags["retrain"] == "True"
    assert "validation RMSSE" in retrained.data.tags["retrain_reasons"]
    assert retrained.data.tags["retrained_model_promoted"] == "True"
    assert (
        retrained.data.metrics["recent_rmsse"]
        > 1.3 * client.get_run(client.get_model_version(name, "1").run_id).data.metrics["lstm_rmsse"]
    )


def test_the_decision_is_a_prefect_artifact(tmp_path: Path) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    exit_code, output, _ = invoke_cli(
        "monitor", "--set", f"work_dir={tmp_path / 'state'}", "--set", f"output_dir={tmp_path / 'out'}"
    )
    assert exit_code == 0 and "no champion forecast logged yet" in output
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["monitoring-decision"]))
        )
    newest = max(artifacts, key=lambda artifact: artifact.created)
    assert "# Monitoring: keep the champion" in newest.data
