"""Ordering policies for the simulator: the LP planner re-run at each review, base stock on a
seasonal-naive forecast, and a fixed order schedule (used for perfect foresight)."""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np
import pandas as pd

from optimization.grid import ITEM_STORE_KEYS
from optimization.problem import CostSettings, ModelOptions, PlanningProblem, SolverSettings
from optimization.replenishment_lp import solve_replenishment_plan
from optimization.simulation import Policy, ReviewState

WEEK = 7
# What the planner needs from a forecast at a review: demand (point or scenarios, by period
# from the review day) and, in quantile mode, stock targets.
DemandModel = Callable[[ReviewState], tuple[pd.DataFrame, pd.DataFrame | None]]


def inventory_position(state: ReviewState) -> np.ndarray:
    return state.on_hand - state.backlog + state.scheduled.sum(axis=1)


def base_stock_policy(order_up_to: Callable[[ReviewState], np.ndarray]) -> Policy:
    """Order the gap between the order-up-to level and the inventory position."""
    return lambda state: np.maximum(order_up_to(state) - inventory_position(state), 0.0)


def seasonal_naive_order_up_to(
    history: np.ndarray,
    lead_time_days: np.ndarray,
    review_days: int,
    service_level: float,
    error_window_days: int = 8 * WEEK,
) -> Callable[[ReviewState], np.ndarray]:
    """The classic level S = forecast over lead time + review + z·sigma·sqrt(lead time + review).

    The forecast repeats last week's days; sigma is the spread of that forecast's one-day
    errors (y[t] - y[t-7]) over the last `error_window_days`, as if days were independent.
    `history` holds the days before the replay, item-store × day.
    """
    z = NormalDist().inv_cdf(service_level)
    protection = lead_time_days.astype(int) + review_days

    def level(state: ReviewState) -> np.ndarray:
        known = np.concatenate([history, state.observed_demand], axis=1)
        last_week = known[:, -WEEK:]
        ahead = np.arange(int(protection.max()))
        forecast = last_week[:, ahead % WEEK]
        cumulative = np.concatenate([np.zeros((len(known), 1)), np.cumsum(forecast, axis=1)], axis=1)
        over_protection = cumulative[np.arange(len(known)), protection]
        errors = known[:, WEEK:] - known[:, :-WEEK]
        sigma = errors[:, -error_window_days:].std(axis=1)
        return over_protection + z * sigma * np.sqrt(protection)

    return level


def fixed_schedule_policy(orders: np.ndarray) -> Policy:
    """Place orders[:, day] on each review day (e.g. a perfect-foresight plan)."""
    return lambda state: orders[:, state.day]


def lp_policy(
    keys: pd.DataFrame,
    items: pd.DataFrame,
    capacity: pd.DataFrame,
    start_date: pd.Timestamp,
    n_periods: int,
    demand_model: DemandModel,
    costs: CostSettings,
    solver: SolverSettings,
    options: ModelOptions,
) -> Policy:
    """Re-plan at each review from the state and the demand model; place the plan's first orders.

    keys: item_id, store_id of the simulator's rows, in row order.  A backlog is owed now, so it
    joins the first period's demand.
    """

    def decide(state: ReviewState) -> np.ndarray:
        today = start_date + pd.Timedelta(days=state.day)
        demand, targets = demand_model(state)
        backlog = keys.assign(owed=state.backlog)
        demand = demand.merge(backlog, on=ITEM_STORE_KEYS, how="left")
        demand["demand"] = demand["demand"] + np.where(demand["period"] == 0, demand["owed"].fillna(0.0), 0.0)
        problem = PlanningProblem(
            start_date=today,
            n_periods=n_periods,
            demand=demand.drop(columns="owed"),
            items=items,
            on_hand=keys.assign(on_hand=state.on_hand),
            open_orders=pipeline_orders(keys, state.scheduled, today, n_periods),
            capacity=capacity,
            safety_stock=targets,
        )
        plan = solve_replenishment_plan(problem, costs, solver, options)
        placed_now = plan.orders.loc[plan.orders["order_date"] == today]
        quantities = keys.merge(placed_now, on=ITEM_STORE_KEYS, how="left")["quantity"]
        return quantities.fillna(0.0).to_numpy()

    return decide


def pipeline_orders(
    keys: pd.DataFrame, scheduled: np.ndarray, today: pd.Timestamp, n_periods: int
) -> pd.DataFrame:
    """Deliveries still to land, as open orders; those beyond the plan's horizon do not matter."""
    within = scheduled[:, :n_periods]
    rows, days = np.nonzero(within > 0)
    return pd.DataFrame(
        {
            "item_id": keys["item_id"].to_numpy()[rows],
            "store_id": keys["store_id"].to_numpy()[rows],
            "quantity": within[rows, days],
            "arrival_date": today + pd.to_timedelta(days, unit="D"),
        }
    )
