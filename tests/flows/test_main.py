"""The main flow end to end on a tiny synthetic set, and on bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from models.pyfunc import as_model_input
from optimization.planning import PURCHASE_ORDER_COLUMNS
from replenish import tracking
from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.data.tables import MasterDefaults, RetailData, complete_tables
from replenish.settings import Settings, load_settings
from tests.conftest import run_cli, set_options

pytestmark = pytest.mark.slow
TOLERANCE = 1e-4


def recomputed_inventory(
    plan: pd.DataFrame, demand: pd.DataFrame, items: pd.DataFrame, on_hand: pd.DataFrame, open_orders: pd.DataFrame
) -> pd.DataFrame:
    """Walk every item-store through the horizon from the published plan alone (lost sales)."""
    lead_times = items.set_index("item_id")["lead_time_days"]
    rows = []
    for (item_id, store_id), days in demand.sort_values("date").groupby(["item_id", "store_id"]):
        stock = float(on_hand.set_index(["item_id", "store_id"]).loc[(item_id, store_id), "on_hand"])
        mine = plan[(plan["item_id"] == item_id) & (plan["store_id"] == store_id)]
        pipeline = open_orders[(open_orders["item_id"] == item_id) & (open_orders["store_id"] == store_id)]
        for day in days.itertuples():
            assert (mine["arrival_date"] - mine["order_date"]).dt.days.eq(lead_times[item_id]).all()
            arriving = (
                mine.loc[mine["arrival_date"] == day.date, "quantity"].sum()
                + pipeline.loc[pipeline["arrival_date"] == day.date, "quantity"].sum()
            )
            after_arrivals = stock + arriving
            stock = max(after_arrivals - day.demand, 0.0)
            rows.append((item_id, store_id, day.date, after_arrivals, stock))
    return pd.DataFrame(rows, columns=["item_id", "store_id", "date", "after_arrivals", "on_hand_end"])


# Data no other test trains on: the training cache (keyed on data) must not serve this run a model.
END_TO_END_SEED = 2024


def test_main_flow_end_to_end(tiny_overrides: list[str]) -> None:
    tiny_overrides = [*tiny_overrides, f"data.synthetic.seed={END_TO_END_SEED}"]
    result = run_cli("run", *set_options(tiny_overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    settings = load_settings(overrides=tiny_overrides)
    assert "expected fill rate" in result.stdout and str(settings.plan_path) in result.stdout
    # The notices filtered at their source (models/lstm/estimator.py, replenish/tracking.py,
    # optimization/backends.py) stay out of the console.
    console = result.stdout + result.stderr
    notices = ("litlogger", "LeafSpec", "Inferred schema contains integer", "Downloading artifacts", "Running HiGHS")
    for notice in (*notices, "Successfully registered model", "Created version"):
        assert notice not in console, notice

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    experiment = client.get_experiment_by_name(settings.tracking.experiment_name)
    all_runs = client.search_runs([experiment.experiment_id])
    runs = {run.data.tags["job"]: run for run in all_runs if run.data.tags["job"] != "backtest"}
    assert set(runs) == {"train", "plan"}
    run, planning_run = runs["train"], runs["plan"]
    for tracked in runs.values():
        assert tracked.info.status == "FINISHED"
        assert tracked.data.tags["validation_status"] == "passed"
        assert tracked.data.tags["prefect_flow_run_id"] != "none"
        assert tracked.data.tags["dataset"] == "synthetic"
        assert tracked.info.run_name.startswith(f"{tracked.data.tags['job']}-synthetic-")
        (dataset,) = tracked.inputs.dataset_inputs
        assert dataset.dataset.digest == tracked.data.tags["data_hash"] and dataset.dataset.name == "synthetic"
    # The parameters are the settings, once: Lightning's copy of the network's (network_kwargs/…) is not logged.
    assert "forecast.lstm.hidden_size" in run.data.params and not any(
        "network_kwargs" in name for name in run.data.params
    )
    for metric in ["lstm_rmsse", "lstm_mase", "seasonal_naive_rmsse", "lstm_coverage_80", "train_loss"]:
        assert np.isfinite(run.data.metrics[metric]), metric
    assert np.isfinite(planning_run.data.metrics["plan_cost"])
    assert planning_run.data.tags["plan_published"] == "true"
    # A file at the root, where MLflow's compare view looks for artifacts that runs share.
    root_files = {a.path for a in client.list_artifacts(run.info.run_id) if not a.is_dir}
    assert "backtest_fan_chart.png" in root_files
    backtest_table = pd.read_csv(client.download_artifacts(run.info.run_id, "backtest/metrics.csv"))
    assert set(backtest_table["model"]) == {"lstm", "seasonal_naive"}
    assert (
        backtest_table.set_index("model")
        .loc["lstm", ["rmsse", "mase", "wrmsse", "pinball", "coverage_80"]]
        .notna()
        .all()
    )
    children = {child.data.tags["model"]: child for child in all_runs if child.data.tags["job"] == "backtest"}
    assert set(children) == {"lstm", "seasonal_naive"}
    for child in children.values():
        assert child.data.tags["mlflow.parentRunId"] == run.info.run_id
        assert len(child.data.tags["backtest_cutoffs"].split(", ")) == settings.forecast.backtest_origins
    assert children["lstm"].data.metrics["rmsse"] == pytest.approx(run.data.metrics["lstm_rmsse"])

    name = settings.tracking.registered_model_name
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.run_id == run.info.run_id
    assert planning_run.data.tags["model_version"] == str(champion.version)
    model = tracking.ModelRegistry.open(settings).load_champion()
    data = complete_tables(
        generate_synthetic(SyntheticConfig(n_items=10, n_stores=2, n_days=200, seed=END_TO_END_SEED)), MasterDefaults()
    )
    forecast = model.predict(as_model_input(data.sales))
    assert len(forecast) == data.sales.groupby(["item_id", "store_id"]).ngroups * settings.forecast.horizon_in(
        data.frequency
    )
    assert (forecast["q0.1"] <= forecast["q0.9"]).all() and (forecast["q0.1"] >= 0).all()

    plan = pd.read_csv(settings.plan_path, parse_dates=["order_date", "arrival_date"])
    assert list(plan.columns) == ["item_id", "store_id", "order_date", "quantity", "arrival_date"]
    assert len(plan) > 0 and (plan["quantity"] >= 0).all()
    assert (plan["order_date"] > data.snapshot_date).all()
    first_day = data.snapshot_date + pd.Timedelta(days=1)
    due = pd.read_csv(settings.output_dir / "purchase_orders.csv", parse_dates=["order_date", "arrival_date"])
    orders_are_what_a_supplier_accepts(due, plan, data, first_day)
    safety_stock_covers_the_forecast_spread(due, client, planning_run.info.run_id)
    # The balance from the published files alone: today's purchase orders, the projected plan after them.
    orders = pd.concat([due[plan.columns], plan[plan["order_date"] > first_day]], ignore_index=True)
    demand = pd.read_csv(settings.output_dir / "plan_demand.csv", parse_dates=["date"])
    inventory = recomputed_inventory(orders, demand, data.items, data.inventory, data.open_orders)
    assert (inventory["on_hand_end"] >= -TOLERANCE).all()
    volume = inventory.merge(data.items[["item_id", "unit_volume"]], on="item_id").merge(
        data.sales[["item_id", "store_id"]].drop_duplicates(), on=["item_id", "store_id"]
    )
    used = (volume["after_arrivals"] * volume["unit_volume"]).groupby([volume["store_id"], volume["date"]]).sum()
    capacity = data.capacity.set_index("store_id")["capacity_volume"]
    assert (used <= used.index.get_level_values("store_id").map(capacity).to_numpy() + TOLERANCE).all()
    explained_plan_matches_the_plan(tiny_overrides)
    report_is_published(settings, result.stdout, client, planning_run.info.run_id)
    plan_is_one_unit(settings, planning_run)


def orders_are_what_a_supplier_accepts(
    due: pd.DataFrame, plan: pd.DataFrame, data: RetailData, first_day: pd.Timestamp
) -> None:
    """purchase_orders.csv is the plan's first day, each line in whole case packs of at least the MOQ."""
    assert list(due.columns) == PURCHASE_ORDER_COLUMNS
    assert len(due) > 0 and (due["order_date"] == first_day).all()
    keys = ["item_id", "store_id", "order_date", "quantity", "arrival_date"]
    pd.testing.assert_frame_equal(
        due[keys].sort_values(keys, ignore_index=True),
        plan.loc[plan["order_date"] == first_day, keys].sort_values(keys, ignore_index=True),
    )
    every = pd.concat([due[keys], plan[keys]]).merge(data.items[["item_id", "case_pack", "moq"]], on="item_id")
    assert (every["quantity"] % every["case_pack"] == 0).all() and (every["quantity"] >= every["moq"]).all()
    priced = due.merge(data.items[["item_id", "supplier_id", "unit_cost"]], on="item_id", suffixes=("", "_master"))
    assert (priced["supplier_id"] == priced["supplier_id_master"]).all()
    np.testing.assert_allclose(priced["case_packs"] * priced["case_pack"], priced["quantity"])
    np.testing.assert_allclose(priced["cost"], priced["quantity"] * priced["unit_cost_master"], atol=0.005)


def safety_stock_covers_the_forecast_spread(due: pd.DataFrame, client: MlflowClient, planning_run_id: str) -> None:
    """Every order of an item-store whose forecast has an 80% interval wider than zero keeps safety stock."""
    forecast = pd.read_csv(client.download_artifacts(planning_run_id, "forecast/forecast.csv"))
    spread = (forecast["q0.9"] - forecast["q0.1"]).groupby([forecast["item_id"], forecast["store_id"]]).max()
    uncertain = due.merge(spread.rename("spread").reset_index(), on=["item_id", "store_id"])
    uncertain = uncertain[uncertain["spread"] > 0]
    assert len(uncertain) > 0 and (uncertain["safety_stock"] > 0).all(), uncertain


def explained_plan_matches_the_plan(settings_overrides: list[str]) -> None:
    settings = load_settings(overrides=settings_overrides)
    plan = pd.read_csv(settings.plan_path)
    explained = pd.read_csv(settings.output_dir / "order_plan_explained.csv")
    assert len(explained) == len(plan)
    assert {"demand_over_protection", "safety_stock", "on_hand", "pipeline", "binding"} <= set(explained.columns)
    assert explained["demand_over_protection"].notna().all()


def plan_is_one_unit(settings: Settings, planning_run: Run) -> None:
    """Every stable path reads the planning run's folder through output/current, as its manifest lists."""
    folder = Path(planning_run.data.tags["plan_folder"])
    assert folder.parent == settings.output_dir / "plans" and folder.name.endswith(planning_run.info.run_id)
    assert os.readlink(settings.output_dir / "current") == f"plans/{folder.name}"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["run_id"] == planning_run.info.run_id
    names = {entry["name"] for entry in manifest["files"]}
    assert {
        "purchase_orders.csv",
        "order_plan.csv",
        "order_plan_explained.csv",
        "plan_demand.csv",
        "plan_report.html",
    } <= names
    assert "constraint_violations.csv" not in names  # soft mode only
    for name in names:
        assert os.readlink(settings.output_dir / name) == f"current/{name}"
        assert (settings.output_dir / name).read_bytes() == (folder / name).read_bytes()


def report_is_published(settings: Settings, stdout: str, client: MlflowClient, planning_run_id: str) -> None:
    report = settings.output_dir / "plan_report.html"
    assert f"report     {report}" in stdout
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Planned cost" in page and '<img src="data:image/png;base64,' in page
    logged = {artifact.path for artifact in client.list_artifacts(planning_run_id, "report")}
    assert logged == {"report/plan_report.html"}
    assert (
        Path(client.download_artifacts(planning_run_id, "report/plan_report.html")).read_text(encoding="utf-8") == page
    )
    with get_client(sync_client=True) as prefect:
        # The newest of each: other tests' runs share this worker's Prefect database.
        newest, key_figures, registration = (
            max(
                prefect.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))),
                key=lambda artifact: artifact.created,
            )
            for key in ("plan-report", "plan-kpis", "training-registration")
        )
    # The MLflow run's page in its UI, not a file on the disk of whichever machine ran the flow.
    experiment_id = client.get_run(planning_run_id).info.experiment_id
    assert f"(http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{planning_run_id})" in newest.data
    assert "file://" not in newest.data and str(report) in newest.data
    figures = {row["figure"]: row["value"] for row in json.loads(key_figures.data)}
    (training,) = client.search_runs([experiment_id], "tags.job = 'train'")
    assert f"# Registered: {training.data.tags['forecaster']}, version 1 (promoted to champion)" in registration.data
    assert f"/runs/{training.info.run_id})" in registration.data and "| lstm |" in registration.data
    assert figures["solver status"] in {"optimal", "repaired"} and "expected fill rate" in figures
