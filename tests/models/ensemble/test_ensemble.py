"""The ensemble: demand classes, weights learned on earlier origins only, combined and calibrated quantiles,
and the registered combination served through the champion alias."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.backtest import Forecaster, backtest_windows, cached_by_cutoff
from models.ensemble.combination import (
    ALL_SERIES,
    Combination,
    combine,
    demand_classes,
    fit_combination,
    series_groups,
)
from models.ensemble.config import EnsembleConfig
from models.ensemble.estimator import EnsemblePredictor, ensemble_forecaster
from models.forecast_frame import MEAN
from tests.models.lstm.test_lstm import weekly_sales

LEVELS = (0.025, 0.1, 0.5, 0.8, 0.9, 0.95, 0.975)
HORIZON = 7


def truth_forecaster(sales: pd.DataFrame, bias: dict[pd.Timestamp, float], spread: float | None) -> Forecaster:
    """A member that forecasts the true units plus a bias per cutoff (read from ``sales``: a test's oracle),
    with quantiles ``spread`` units either side per unit of its normal z (none when ``spread`` is None)."""
    units = sales.set_index(["item_id", "store_id", "date"])["units"]

    def forecast(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        cutoff = history["date"].max()
        point = units.reindex(pd.MultiIndex.from_frame(future[["item_id", "store_id", "date"]])).to_numpy(dtype=float)
        frame = future[["item_id", "store_id", "date"]].assign(cutoff=cutoff, **{MEAN: point + bias.get(cutoff, 0.0)})
        if spread is not None:
            for level, z in {0.025: -1.96, 0.1: -1.28, 0.5: 0.0, 0.9: 1.28, 0.975: 1.96}.items():
                frame[f"q{level:g}"] = frame[MEAN] + spread * z
        return frame

    return forecast


def test_weights_are_learned_only_from_origins_before_the_holdout() -> None:
    sales = weekly_sales(n_series=4, n_days=120)
    holdout = backtest_windows(sales, HORIZON, 1)[0]
    earlier = [window.cutoff for window in backtest_windows(holdout.history, HORIZON, 2)]
    # "steady" is off by one unit everywhere; "erratic" by five at the earlier origins and perfect on the holdout.
    steady = truth_forecaster(sales, dict.fromkeys([*earlier, holdout.cutoff], 1.0), spread=1.0)
    erratic = truth_forecaster(sales, dict.fromkeys(earlier, 5.0), spread=1.0)
    config = EnsembleConfig(members=("steady", "erratic"), grouping="none", calibrate=False, calibration_origins=2)
    forecast = ensemble_forecaster({"steady": steady, "erratic": erratic}, config, HORIZON, LEVELS)(
        holdout.history, holdout.future
    )

    # erratic's weight: where steady gives truth + 1 and erratic truth, the combination gives truth + w_steady.
    truth = holdout.actual.merge(forecast, on=["item_id", "store_id", "date"])
    steady_weight = truth[MEAN] - truth["units"]
    expected = (1 / 1.0) / (1 / 1.0 + 1 / 25.0)  # inverse scaled squared errors at the earlier origins: 1 and 25
    np.testing.assert_allclose(steady_weight, expected, atol=1e-9)


def test_members_are_fitted_once_per_cutoff_across_nested_origins() -> None:
    sales = weekly_sales(n_series=2, n_days=100)
    fitted_at: list[pd.Timestamp] = []
    member = truth_forecaster(sales, {}, spread=None)

    def counted(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        fitted_at.append(history["date"].max())
        return member(history, future)

    cached = cached_by_cutoff(counted)
    config = EnsembleConfig(members=("a", "b"), grouping="none", calibration_origins=2)
    ensemble = ensemble_forecaster(
        {"a": cached, "b": truth_forecaster(sales, {}, spread=None)}, config, HORIZON, LEVELS
    )
    for window in backtest_windows(sales, HORIZON, 2):
        cached(window.history, window.future)
        ensemble(window.history, window.future)
    # Six forecasts asked for (two origins, each with two earlier ones), four cutoffs among them, four fits.
    assert len(fitted_at) == len(set(fitted_at)) == 4


def test_one_member_gives_back_its_own_forecast() -> None:
    sales = weekly_sales(n_series=3, n_days=100)
    holdout = backtest_windows(sales, HORIZON, 1)[0]
    member = truth_forecaster(sales, {}, spread=2.0)
    uncalibrated = EnsembleConfig(members=("only",), grouping="demand_class", calibrate=False)
    forecast = ensemble_forecaster({"only": member}, uncalibrated, HORIZON, (0.025, 0.1, 0.5, 0.9, 0.975))(
        holdout.history, holdout.future
    )
    expected = member(holdout.history, holdout.future)
    merged = expected.merge(forecast, on=["item_id", "store_id", "date"], suffixes=("", "_ensemble"))
    np.testing.assert_allclose(merged[f"{MEAN}_ensemble"], merged[MEAN].clip(lower=0))
    for level in ("q0.025", "q0.1", "q0.5", "q0.9", "q0.975"):
        np.testing.assert_allclose(merged[f"{level}_ensemble"], merged[level].clip(lower=0))


def test_combined_quantiles_are_monotone_non_negative_and_calibrated_to_coverage() -> None:
    rng = np.random.default_rng(3)
    rows = 2000
    keys = pd.DataFrame(
        {
            "item_id": [f"I{i % 50}" for i in range(rows)],
            "store_id": "S",
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(rows) // 50, "D"),
            "cutoff": pd.Timestamp("2023-12-31"),
        }
    )
    actual = keys.assign(units=rng.poisson(3.0, rows).astype(float))
    # A member whose intervals are far too narrow, one with crossing and negative quantiles, one point-only.
    narrow = keys.assign(**{MEAN: 3.0, "q0.025": 2.9, "q0.1": 2.95, "q0.5": 3.0, "q0.9": 3.05, "q0.975": 3.1})
    crossing = keys.assign(
        **{MEAN: rng.normal(3, 1, rows), "q0.025": -1.0, "q0.1": 4.0, "q0.5": 2.0, "q0.9": 1.0, "q0.975": 8.0}
    )
    point_only = keys.assign(**{MEAN: 2.5})
    forecasts = {"narrow": narrow, "crossing": crossing, "point_only": point_only}
    history = pd.concat([actual.assign(date=actual["date"] - pd.Timedelta(days=60)), actual]).drop(columns="cutoff")
    groups = pd.Series(ALL_SERIES, index=(keys["item_id"] + "|S").unique())
    combination = fit_combination(forecasts, actual, history, groups, LEVELS, EnsembleConfig(members=tuple(forecasts)))
    combined = combine(forecasts, combination, groups)

    values = combined[[f"q{level:g}" for level in LEVELS]].to_numpy()
    assert (values >= 0).all() and (np.diff(values, axis=1) >= 0).all()
    scored = combined.merge(actual, on=["item_id", "store_id", "date"])
    coverage_80 = ((scored["units"] >= scored["q0.1"]) & (scored["units"] <= scored["q0.9"])).mean()
    assert 0.78 <= coverage_80 <= 0.86  # the narrow intervals were stretched to cover


def test_demand_classes_follow_adi_and_cv2() -> None:
    dates = pd.date_range("2024-01-01", periods=200, freq="D")
    every_day = np.ones(200)
    rare = (np.arange(200) % 5 == 0).astype(float)  # a sale every 5th day: ADI 5
    small_or_large = np.where(np.arange(200) % 2 == 0, 1.0, 30.0)  # sizes 1 and 30: CV² 0.87
    units = {
        "smooth": 10 * every_day,
        "intermittent": 2 * rare,
        "lumpy": rare * np.where(np.arange(200) % 10 == 0, 1.0, 30.0),
        "erratic": small_or_large,
    }
    sales = pd.concat(
        [
            pd.DataFrame({"item_id": name, "store_id": "S", "date": dates, "units": values})
            for name, values in units.items()
        ],
        ignore_index=True,
    )
    assert demand_classes(sales).to_dict() == {(name, "S"): name for name in units}
    assert set(series_groups(sales.assign(dept_id="D1"), "dept_id")) == {"D1"}


@pytest.mark.slow
def test_registered_ensemble_loads_through_the_champion_alias_in_a_fresh_process(tmp_path: Path) -> None:
    from models.features import build_feature_frame
    from models.lstm.config import LSTMConfig
    from models.lstm.estimator import LSTMEstimator
    from replenish import tracking
    from replenish.settings import load_settings

    sales = weekly_sales(n_series=3, n_days=90)
    lstm = LSTMEstimator(
        LSTMConfig(context_length=28, hidden_size=8, max_epochs=1, batch_size=64),
        HORIZON,
        LEVELS,
        0,
        tmp_path / "ckpt",
        show_progress=False,
    ).fit(build_feature_frame(sales))
    combination = Combination(
        ("lstm", "seasonal_naive"),
        lstm.quantiles,
        {ALL_SERIES: {"lstm": 0.7, "seasonal_naive": 0.3}},
        {ALL_SERIES: dict.fromkeys(lstm.quantiles, 1.2)},
    )
    ensemble = EnsemblePredictor(
        combination, EnsembleConfig(members=combination.members, grouping="none"), HORIZON, seed=0, lstm=lstm
    )
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    registry = tracking.ModelRegistry.open(settings)
    version = registry.log_forecaster(tracking.start_run(settings, "ensemble", {}), ensemble, sales)
    registry.promote(version, tracking.decide_promotion(0.5, None, "holdout_rmsse"))

    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "mlflow.set_tracking_uri(sys.argv[1]); mlflow.set_registry_uri(sys.argv[2])\n"
        "sales = pd.read_parquet(sys.argv[3])\n"
        "forecast = mlflow.pyfunc.load_model(f'models:/{sys.argv[4]}@champion').predict(sales)\n"
        "print(json.dumps({'columns': list(forecast.columns), 'rows': len(forecast),"
        " 'mean': float(forecast['mean'].sum())}))\n"
    )
    sales.to_parquet(tmp_path / "sales.parquet")
    finished = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            settings.mlflow_tracking_uri,
            settings.mlflow_registry_uri,
            str(tmp_path / "sales.parquet"),
            settings.tracking.registered_model_name,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    served = json.loads(finished.stdout.strip().splitlines()[-1])
    expected = ensemble.predict(sales)
    assert (
        served["columns"]
        == list(expected.columns)
        == ["item_id", "store_id", "date", "mean", *[f"q{level:g}" for level in lstm.quantiles]]
    )
    assert served["rows"] == 3 * HORIZON
    assert served["mean"] == pytest.approx(float(expected["mean"].sum()), rel=1e-5)
