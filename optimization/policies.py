"""Ordering policies for the simulator that need no optimizer: base stock on a seasonal-naive
forecast, orders rounded up to what a supplier accepts, and a fixed order schedule (used for
perfect foresight)."""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np

from optimization.simulation import Policy, ReviewState

WEEK = 7


def inventory_position(state: ReviewState) -> np.ndarray:
    return state.on_hand - state.backlog + state.scheduled.sum(axis=1)


def base_stock_policy(order_up_to: Callable[[ReviewState], np.ndarray]) -> Policy:
    """Order the gap between the order-up-to level and the inventory position."""
    return lambda state: np.maximum(order_up_to(state) - inventory_position(state), 0.0)


def seasonal_naive_order_up_to(
    history: np.ndarray,
    lead_time_days: np.ndarray,
    review_days: np.ndarray,
    service_level: np.ndarray,
    error_window_days: int = 8 * WEEK,
) -> Callable[[ReviewState], np.ndarray]:
    """The classic level S = forecast over lead time + review + z·sigma·sqrt(lead time + review).

    The forecast repeats last week's days; sigma is the spread of that forecast's one-day
    errors (y[t] - y[t-7]) over the last `error_window_days`, as if days were independent.
    `history` holds the days before the replay, item-store × day; review_days and service_level
    hold one value per item-store (or one for all).
    """
    z = np.array([NormalDist().inv_cdf(level) for level in np.broadcast_to(service_level, len(history))])
    protection = lead_time_days.astype(int) + np.broadcast_to(review_days, len(history)).astype(int)

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


def rounded_up_to_whole_orders(policy: Policy, case_pack: np.ndarray, moq: np.ndarray) -> Policy:
    """Each order the policy places raised to the least quantity a supplier accepts: whole case
    packs, and at least the MOQ."""
    smallest = case_pack * np.ceil(np.maximum(moq, 1) / case_pack)

    def decide(state: ReviewState) -> np.ndarray:
        wanted = np.asarray(policy(state), dtype=float)
        packs = np.ceil(wanted / case_pack - 1e-9) * case_pack
        return np.where(wanted > 0, np.maximum(packs, smallest), 0.0)

    return decide


def fixed_schedule_policy(orders: np.ndarray) -> Policy:
    """Place orders[:, day] on each order day (e.g. a perfect-foresight plan)."""
    return lambda state: orders[:, state.day]
