"""`replenish run` end to end on weekly and on monthly intermittent sales: trained, registered and planned
in the data's periods."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from models.baselines import BASELINES
from replenish.data.synthetic import generate_intermittent_monthly
from replenish.frequency import Frequency
from replenish.settings import load_settings
from tests.conftest import invoke_cli, set_options

pytestmark = pytest.mark.slow

# Small and short-trained; every baseline, so the backtest shows each one at the data's periods.
PERIODIC_RUN = [
    "forecast.lstm.max_epochs=1",
    "forecast.lstm.hidden_size=16",
    "forecast.backtest_origins=1",
    f"forecast.baselines=[{', '.join(BASELINES)}]",
    "planning.n_scenarios=30",
    "planning.kpi_demand_paths=50",
]


def run_and_check(workspace: Path, overrides: list[str], data: list[str], frequency: Frequency) -> pd.DataFrame:
    """Run, then check the model's recorded periods and the backtest; return the published projected plan."""
    overrides = [f"work_dir={workspace / 'state'}", f"output_dir={workspace / 'output'}", *PERIODIC_RUN, *overrides]
    exit_code, stdout, stderr = invoke_cli("run", *data, *set_options(overrides))
    assert exit_code == 0, stderr[-3000:]
    settings = load_settings(overrides=overrides)
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    (version,) = client.search_model_versions(f"name='{settings.tracking.registered_model_name}'")
    assert version.tags["forecast.frequency"] == frequency.alias
    assert version.tags["forecast.horizon"] == str(frequency.default_horizon)
    training = client.get_run(version.run_id)
    assert training.data.tags["data_frequency"] == frequency.alias
    for model in BASELINES:
        assert f"{model}_rmsse" in training.data.metrics, model
    assert "purchase order(s) due" in stdout
    plan = pd.read_csv(settings.plan_path, parse_dates=["order_date", "arrival_date"])
    purchase_orders = pd.read_csv(settings.output_dir / "purchase_orders.csv", parse_dates=["order_date"])
    assert len(purchase_orders) and (purchase_orders["quantity"] % purchase_orders["case_pack"] == 0).all()
    return plan


def test_a_weekly_run_trains_and_plans_in_weeks(tmp_path: Path) -> None:
    weekly = ["data.synthetic.frequency=W", "data.synthetic.n_items=4", "data.synthetic.n_stores=1"]
    plan = run_and_check(tmp_path, [*weekly, "data.synthetic.n_days=560"], [], Frequency("W-SUN"))

    assert (plan["order_date"].dt.day_of_week == 6).all() and (plan["arrival_date"].dt.day_of_week == 6).all()
    # Lead times of 2 to 14 days are one or two weeks.
    assert ((plan["arrival_date"] - plan["order_date"]).dt.days.isin([7, 14])).all()


def test_a_monthly_intermittent_run_infers_months_and_plans_in_them(tmp_path: Path) -> None:
    parts = generate_intermittent_monthly(n_series=8, n_months=51, seed=5)
    sales = tmp_path / "parts.csv"
    parts.assign(date=parts["date"].dt.strftime("%Y-%m-%d")).to_csv(sales, index=False)

    plan = run_and_check(
        tmp_path, ["forecast.lstm.context_length=24"], ["--data", str(sales), "--format", "long"], Frequency("MS")
    )

    assert plan["order_date"].dt.is_month_start.all() and plan["arrival_date"].dt.is_month_start.all()
