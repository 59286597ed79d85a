"""The planning policy proven on the user's own history: the last weeks replayed day by day, the
default policy re-planned on each order day exactly as `replenish plan` plans, beside base stock
and perfect foresight.  No Prefect here; flows.simulation and benchmarks/inventory_policy.py call it.

1. The last `simulate.weeks` weeks of sales are held out.  The forecaster (the LSTM, with the
   forecast settings) learns from the days before them, and makes every forecast of the replay
   from the sales up to the day it plans.
2. The replay starts from the stock and capacity that `complete_tables` sets for the day before
   the window (an inventory table describes the latest day, not the window's start, so the
   master defaults' estimate stands in), with no order in transit.  Each day demand is what was
   sold; what stock cannot serve is lost (or backlogged).  On an item's order days each policy orders:
   * default: optimization.planning with the same settings as `replenish plan`, on that day's
     forecast (its demand paths calibrated on the forecast made one horizon earlier), with the stock
     and orders in transit of the replay;
   * base_stock_snaive: up to a seasonal-naive forecast over lead time + review plus a normal
     safety stock for the item's service-level target, rounded up to whole case packs and the MOQ;
   * perfect_foresight: the plan (whole orders, same costs and constraints) solved once on the
     window's actual demand.
   The default policy is also replayed, on the first simulate.milp_gap_stores stores, with the
   other way to whole orders (the MILP when the default repairs the LP, the repair otherwise): the
   repair's extra cost over the MILP on those stores is its gap (the MILP takes minutes per store
   and order day).
3. Scores (optimization.simulation): holding, shortage, ordering and total cost; fill rate; cycle
   service level, overall and per ABC class; stock-out days; turns; orders a supplier would refuse.

A simulation is recorded as an MLflow run of job SIMULATION_JOB (tasks.simulation.log_simulation);
latest_simulation reads a data set's latest back for the plan report.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.forecast_contract import cover_planned_days
from models.forecast_frame import SERIES_KEY, series_codes
from optimization.config import PlanningConfig
from optimization.grid import DAYS_PER_YEAR, order_calendar
from optimization.planning import (
    calibration_origin,
    merged_plan,
    planned_dates,
    planning_problem,
    scenario_calibration,
    service_level_targets,
    solve_plan,
    store_plan,
    stores,
)
from optimization.policies import (
    base_stock_policy,
    fixed_schedule_policy,
    rounded_up_to_whole_orders,
    seasonal_naive_order_up_to,
)
from optimization.problem import PlanningProblem, SolverLimitError
from optimization.service_levels import ABC_CLASSES
from optimization.simulation import (
    InventorySystem,
    Policy,
    ReviewState,
    SimulationResult,
    cycle_service_level,
    simulate,
)
from replenish.data.tables import RawTables, RetailData, complete_tables, parse_days
from replenish.frequency import DAILY, infer_frequency
from replenish.report import SimulatedPolicies
from replenish.settings import DataSettings, Settings
from replenish.tracking import dataset_name

if TYPE_CHECKING:
    from replenish.tracking import Experiment

DEFAULT, BASE_STOCK, PERFECT_FORESIGHT = "default", "base_stock_snaive", "perfect_foresight"
POLICIES = (DEFAULT, BASE_STOCK, PERFECT_FORESIGHT)
# The default policy with the other way to whole orders, on the stores the repair's gap is measured on.
COUNTERPART = "default_other_whole_orders"
# What the table of each policy shows, in this order.
METRICS = [
    "total_cost",
    "holding_cost",
    "shortage_cost",
    "ordering_cost",
    "fill_rate",
    "cycle_service_level",
    *(f"cycle_service_level_{abc_class}" for abc_class in ABC_CLASSES),
    "stockout_days",
    "turns",
    "average_on_hand",
    "case_pack_violations",
    "capacity_breach_store_days",
]
# Base stock's seasonal-naive errors are read over the days before the window (see policies).
BASE_STOCK_HISTORY_DAYS = 120
# How a simulation is recorded in MLflow: a run of this job, tagged with the data set, and its files.
SIMULATION_JOB = "simulation"
SIMULATION_TABLE = "simulation/policies.csv"
ITEM_STORE_COSTS = "simulation/item_store_costs.csv"
SIMULATION_CHART = "simulation/cost_vs_fill_rate.png"


class SimulationWindowError(ValueError):
    """The history is too short for the replay asked for."""


# Sales up to a day (exclusive) -> quantile forecast of the days after: item_id, store_id, date, q<level>...
Forecaster = Callable[[pd.DataFrame], pd.DataFrame]
# Sales before the window -> the forecaster fitted on them.
ForecasterTraining = Callable[[pd.DataFrame], Forecaster]


@dataclass(frozen=True)
class PolicySimulation:
    start: pd.Timestamp  # first replayed day
    days: int
    item_stores: int
    metrics: pd.DataFrame  # one row per policy (POLICIES), METRICS as columns
    milp_gap: float  # the repair's total cost over the MILP's, less one, on milp_gap_stores
    milp_gap_stores: tuple[str, ...]
    seconds: dict[str, float]  # per policy (and COUNTERPART), and "forecaster" for the fit
    # Total cost per item-store (item_id, store_id) and policy (columns POLICIES), to tell a
    # difference between policies from the replay's noise.
    item_store_costs: pd.DataFrame

    def cost_reduction(self) -> float:
        """How much less the default policy costs than base stock."""
        return float(1.0 - self.metrics.loc[DEFAULT, "total_cost"] / self.metrics.loc[BASE_STOCK, "total_cost"])

    def gap_closed(self) -> float:
        """The share of base stock's cost gap to perfect foresight the default policy closes."""
        base, default, best = (
            float(self.metrics.loc[name, "total_cost"]) for name in (BASE_STOCK, DEFAULT, PERFECT_FORESIGHT)
        )
        return (base - default) / (base - best) if base > best else float("nan")


def lstm_training(settings: Settings) -> ForecasterTraining:
    """The project's forecaster, fitted with the forecast settings (its checkpoints in a temporary
    folder, gone once fitted)."""
    from models.features import build_feature_frame
    from models.lstm.estimator import LSTMEstimator

    forecast = settings.forecast

    def train(sales: pd.DataFrame) -> Forecaster:
        with tempfile.TemporaryDirectory(prefix="simulate-checkpoints-") as checkpoints:
            estimator = LSTMEstimator(
                forecast.lstm, forecast.horizon_in(DAILY), forecast.quantiles, forecast.seed, Path(checkpoints)
            )
            return estimator.fit(build_feature_frame(sales)).predict

    return train


def simulate_policies(
    raw: RawTables, settings: Settings, training: ForecasterTraining | None = None
) -> PolicySimulation:
    """Replay the last settings.simulate.weeks weeks of `raw` (validated tables) under every policy."""
    sold = parse_days(raw.sales["date"])
    found = infer_frequency(sold, series_codes(raw.sales))
    if found.frequency not in (None, DAILY):
        raise SimulationWindowError(
            f"the policy simulation replays days one by one; these sales are {found.frequency.description}"
        )
    settings = settings.for_frequency(DAILY)
    defaults, planning = settings.data.master_defaults, settings.planning
    full = complete_tables(raw, defaults, settings.data.absent_dates)
    days = settings.simulate.weeks * 7
    start = full.snapshot_date - pd.Timedelta(days=days - 1)
    sold_before = parse_days(raw.sales["date"]) < start
    if not sold_before.any():
        raise SimulationWindowError(
            f"the data has no sales before the replayed window ({days} days from "
            f"{start:%Y-%m-%d}); lower simulate.weeks"
        )
    before = complete_tables(
        RawTables(sales=raw.sales.loc[sold_before], items=raw.items, capacity=raw.capacity, sources=raw.sources),
        defaults,
        settings.data.absent_dates,
    )
    replay = _Replay(full, before, start, days, planning)
    timings = {}
    started = time.perf_counter()
    forecaster = (training or lstm_training(settings))(before.sales)
    timings["forecaster"] = time.perf_counter() - started
    forecasts = _ForecastsByDay(forecaster, full.sales)
    gap_stores = tuple(sorted(replay.keys["store_id"].unique()))[: settings.simulate.milp_gap_stores]
    results = {}
    for name, policy in policies(replay, forecasts, planning, gap_stores).items():
        started = time.perf_counter()
        results[name] = simulate(replay.system, replay.actual, policy())
        timings[name] = time.perf_counter() - started
    on_gap_stores = replay.keys["store_id"].isin(gap_stores).to_numpy()
    by_method = {planning.model.whole_orders: results[DEFAULT], _other_whole_orders(planning): results[COUNTERPART]}
    repair, milp = (
        by_method[method].costs(replay.system, on_gap_stores)["total_cost"] for method in ("repair", "milp")
    )
    metrics = pd.DataFrame({name: replay.scores(results[name]) for name in POLICIES}).T[METRICS]
    item_store_costs = replay.keys.assign(
        **{
            name: [results[name].costs(replay.system, np.array([row]))["total_cost"] for row in range(len(replay.keys))]
            for name in POLICIES
        }
    )
    return PolicySimulation(
        start, days, len(replay.keys), metrics, repair / milp - 1.0, gap_stores, timings, item_store_costs
    )


def latest_simulation(experiment: Experiment, data: DataSettings) -> SimulatedPolicies | None:
    """This data set's latest policy simulation in ``experiment``; None before the first."""
    run = experiment.latest_run({"job": SIMULATION_JOB, "dataset": dataset_name(data)})
    if run is None:
        return None
    return SimulatedPolicies(
        run.info.run_id,
        run.data.tags["simulation_start"],
        int(run.data.tags["simulation_days"]),
        experiment.run(run.info.run_id).load_table(SIMULATION_TABLE).set_index("policy"),
    )


def policies(
    replay: _Replay, forecasts: _ForecastsByDay, planning: PlanningConfig, gap_stores: tuple[str, ...]
) -> dict[str, Callable[[], Policy]]:
    """Each policy's name and how to make it, in the order they are replayed."""
    other = replace(planning, model=replace(planning.model, whole_orders=_other_whole_orders(planning)))
    return {
        DEFAULT: lambda: replay.planning_policy(forecasts, planning),
        BASE_STOCK: replay.base_stock_policy,
        PERFECT_FORESIGHT: replay.perfect_foresight_policy,
        COUNTERPART: lambda: replay.planning_policy(forecasts, other, gap_stores),
    }


def _other_whole_orders(planning: PlanningConfig) -> str:
    return "milp" if planning.model.whole_orders == "repair" else "repair"


class _ForecastsByDay:
    """One forecast per planning day, shared by the policies that plan on it."""

    def __init__(self, forecaster: Forecaster, sales: pd.DataFrame) -> None:
        self.forecaster, self.sales = forecaster, sales
        self.made: dict[pd.Timestamp, pd.DataFrame] = {}

    def __call__(self, day: pd.Timestamp) -> pd.DataFrame:
        if day not in self.made:
            self.made[day] = self.forecaster(self.sales.loc[self.sales["date"] < day])
        return self.made[day]


class _Replay:
    """The replayed item-stores, their actual demand and the inventory system they run in."""

    def __init__(
        self, full: RetailData, before: RetailData, start: pd.Timestamp, days: int, planning: PlanningConfig
    ) -> None:
        self.full, self.before, self.start, self.days = full, before, start, days
        self.keys = before.inventory[SERIES_KEY].reset_index(drop=True)
        self.item_stores = self.keys.merge(before.items, on="item_id", how="left")
        self.actual = _daily_units(full.sales, self.keys, start, days)
        self.history = _daily_units(
            full.sales, self.keys, start - pd.Timedelta(days=BASE_STOCK_HISTORY_DAYS), BASE_STOCK_HISTORY_DAYS
        )
        levels = service_level_targets(before, planning).set_index("item_id")
        self.abc_class = self.item_stores["item_id"].map(levels["abc_class"]).to_numpy()
        self.target = self.item_stores["item_id"].map(levels["service_level"]).to_numpy(dtype=float)
        self.planning = planning
        self.system = self._inventory_system()

    def _of_item_stores(self, column: str, dtype: type = float) -> np.ndarray:
        return self.item_stores[column].to_numpy(dtype=dtype)

    def _inventory_system(self) -> InventorySystem:
        planning, unit_cost = self.planning, self._of_item_stores("unit_cost")
        own_penalty = self.item_stores.get("shortage_cost", pd.Series(np.nan, index=self.item_stores.index))
        return InventorySystem(
            unit_cost=unit_cost,
            holding_cost_per_day=unit_cost * self._of_item_stores("holding_cost_rate") / DAYS_PER_YEAR,
            # A lost sale costs the penalty as configured: the plan's raised penalty is a means, not the score.
            shortage_cost=own_penalty.fillna(
                self.item_stores["unit_cost"] * planning.costs.shortage_cost_multiplier
            ).to_numpy(dtype=float),
            lead_time_days=self._of_item_stores("lead_time_days", int),
            opening_on_hand=self.before.inventory["on_hand"].to_numpy(dtype=float),
            open_arrivals=np.zeros(self.actual.shape),
            order_days=order_calendar(
                self.start,
                self.days,
                DAILY,
                self._of_item_stores("review_days", int),
                self._of_item_stores("order_weekday", int),
            ),
            shortage_mode=planning.model.shortage_mode,
            fixed_order_cost=planning.costs.fixed_order_cost,
            order_cost_per_unit=planning.costs.order_cost_per_unit,
            unit_volume=self._of_item_stores("unit_volume"),
            store_index=pd.Index(self.before.capacity["store_id"]).get_indexer(self.item_stores["store_id"]),
            store_capacity=self.before.capacity["capacity_volume"].to_numpy(dtype=float),
            case_pack=self._of_item_stores("case_pack"),
            moq=self._of_item_stores("moq"),
        )

    def planning_policy(
        self,
        forecasts: _ForecastsByDay,
        planning: PlanningConfig,  # noqa: ANN201 - a Policy
        only_stores: tuple[str, ...] | None = None,
    ):
        """What `replenish plan` would order on the day, from the replay's stock and orders in transit
        (only_stores: solve those stores' plans alone, the rest order nothing)."""

        def decide(state: ReviewState) -> np.ndarray:
            today = self.start + pd.Timedelta(days=state.day)
            data = replace(
                self.before,
                sales=self.full.sales.loc[self.full.sales["date"] < today],
                inventory=self.keys.assign(on_hand=state.on_hand),
                open_orders=_in_transit(self.keys, state.scheduled, today),
                snapshot_date=today - pd.Timedelta(days=1),
            )
            dates = planned_dates(data.snapshot_date, planning, DAILY)
            forecast = cover_planned_days(forecasts(today), data.sales, dates, planning.missing_forecast).forecast
            calibration = scenario_calibration(
                forecasts(calibration_origin(data.snapshot_date, planning, DAILY)), data, planning
            )
            problem = planning_problem(data, forecast, planning, calibration)
            parts = [
                part
                for part in stores(problem, planning)
                if only_stores is None or set(part.demand["store_id"]) <= set(only_stores)
            ]
            try:
                plan = merged_plan([store_plan(part, planning) for part in parts], planning)
            except SolverLimitError as error:
                raise SolverLimitError(f"replaying {today:%Y-%m-%d}: {error}") from error
            placed = plan.orders.loc[plan.orders["order_date"] == today]
            return self.keys.merge(placed, on=SERIES_KEY, how="left")["quantity"].fillna(0.0).to_numpy()

        return decide

    def base_stock_policy(self):  # noqa: ANN201 - a Policy
        level = seasonal_naive_order_up_to(
            self.history,
            self._of_item_stores("lead_time_days", int),
            self._of_item_stores("review_days", int),
            self.target,
        )
        return rounded_up_to_whole_orders(
            base_stock_policy(level), self._of_item_stores("case_pack"), self._of_item_stores("moq")
        )

    def perfect_foresight_policy(self):  # noqa: ANN201 - a Policy
        """The plan made once on the window's actual demand, with the same costs and constraints."""
        rows, days = np.indices(self.actual.shape)
        demand = (
            self.keys.iloc[rows.ravel()].reset_index(drop=True).assign(period=days.ravel(), demand=self.actual.ravel())
        )
        problem = PlanningProblem(
            start_date=self.start,
            n_periods=self.days,
            demand=demand,
            items=self.before.items,
            on_hand=self.before.inventory,
            open_orders=self.before.open_orders,
            capacity=self.before.capacity,
        )
        plan = solve_plan(problem, self.planning)
        schedule = np.zeros(self.actual.shape)
        placed = plan.orders.merge(self.keys.reset_index(names="row"), on=SERIES_KEY)
        schedule[placed["row"].to_numpy(), (placed["order_date"] - self.start).dt.days.to_numpy()] = placed["quantity"]
        return fixed_schedule_policy(schedule)

    def scores(self, result: SimulationResult) -> dict[str, float]:
        by_class = {
            f"cycle_service_level_{abc_class}": cycle_service_level(
                self.actual[self.abc_class == abc_class],
                result.unmet_demand[self.abc_class == abc_class],
                self.system.order_days[self.abc_class == abc_class],
            )
            if (self.abc_class == abc_class).any()
            else float("nan")
            for abc_class in ABC_CLASSES
        }
        return {**result.metrics, **by_class}


def _daily_units(sales: pd.DataFrame, keys: pd.DataFrame, start: pd.Timestamp, days: int) -> np.ndarray:
    """Units per item-store (rows in `keys` order) and day; a day without a sales row counts 0."""
    window = sales.loc[(sales["date"] >= start) & (sales["date"] < start + pd.Timedelta(days=days))]
    located = window.merge(keys.reset_index(names="row"), on=SERIES_KEY, how="inner")
    matrix = np.zeros((len(keys), days))
    matrix[located["row"].to_numpy(), (located["date"] - start).dt.days.to_numpy()] = located["units"].to_numpy(
        dtype=float
    )
    return matrix


def _in_transit(keys: pd.DataFrame, scheduled: np.ndarray, today: pd.Timestamp) -> pd.DataFrame:
    """The replay's deliveries still to land, as open orders."""
    rows, days = np.nonzero(scheduled > 0)
    return pd.DataFrame(
        {
            "item_id": keys["item_id"].to_numpy()[rows],
            "store_id": keys["store_id"].to_numpy()[rows],
            "quantity": scheduled[rows, days],
            "arrival_date": today + pd.to_timedelta(days, unit="D"),
        }
    )
