"""Cycle service-level targets per item, and how they meet the shortage penalty.

A target is the share of order cycles an item-store should get through without running short.
An item takes it from the item master (service_level), else from its ABC class: items sorted by
revenue, those making the first `a_revenue_share` of it are class A, the next `b_revenue_share`
class B, the rest class C.

The shortage penalty implies a level of its own.  One more unit ordered for an order cycle costs
h·R when it is left over (holding it for the R review days until the next order can arrive), and
gains p - c when it sells (the penalty p saved, less the unit cost c the plan then pays), so a
plan that only weighs the two stocks up to the critical fractile (p - c) / (p - c + h·R) of
demand over the cycle.  Neither silently wins: the plan follows the higher of the two levels.
Where the target is higher, the item's penalty is raised to the one that implies it,
c + h·R·level / (1 - level) (scenario mode), and its safety stock is set for it (quantile mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ABC_CLASSES = ("A", "B", "C")


@dataclass(frozen=True)
class ServiceLevels:
    """Default cycle service-level targets by ABC class of revenue."""

    a: float = 0.98
    b: float = 0.95
    c: float = 0.90
    a_revenue_share: float = 0.80  # the best-selling items making this share of revenue are class A
    b_revenue_share: float = 0.15  # the next ones making this share are class B; the rest class C

    def __post_init__(self) -> None:
        for name in ("a", "b", "c"):
            if not 0.5 < getattr(self, name) < 1:
                raise ValueError(f"service level {name} must lie strictly between 0.5 and 1, got {getattr(self, name)}")
        if not (
            0 < self.a_revenue_share and 0 < self.b_revenue_share and self.a_revenue_share + self.b_revenue_share < 1
        ):
            raise ValueError("a_revenue_share and b_revenue_share must be above 0 and add up to less than 1")

    def of_class(self, abc_class: pd.Series) -> pd.Series:
        return abc_class.map({"A": self.a, "B": self.b, "C": self.c}).astype(float)


def abc_classes(revenue: pd.Series, levels: ServiceLevels) -> pd.Series:
    """Class per item (the index of `revenue`): A while the revenue of the items before it, best
    sellers first, is under a_revenue_share of the total, then B under a + b, then C."""
    ordered = revenue.clip(lower=0).sort_values(ascending=False, kind="stable")
    total = float(ordered.sum())
    before = (ordered.cumsum() - ordered) / total if total > 0 else pd.Series(1.0, index=ordered.index)
    classes = np.select(
        [before < levels.a_revenue_share, before < levels.a_revenue_share + levels.b_revenue_share],
        ["A", "B"],
        "C",
    )
    return pd.Series(classes, index=ordered.index, name="abc_class").reindex(revenue.index)


def penalty_implied_level(
    unit_cost: np.ndarray, penalty: np.ndarray, holding_per_day: np.ndarray, review_days: np.ndarray
) -> np.ndarray:
    """The critical fractile (p - c) / (p - c + h·R); 0 where a lost sale costs no more than the unit."""
    gain = np.maximum(np.asarray(penalty, dtype=float) - unit_cost, 0.0)
    overage = np.asarray(holding_per_day, dtype=float) * review_days
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(gain > 0, gain / (gain + overage), 0.0)


def penalty_for_level(
    unit_cost: np.ndarray, holding_per_day: np.ndarray, review_days: np.ndarray, level: np.ndarray
) -> np.ndarray:
    """The penalty whose critical fractile is `level`: c + h·R·level / (1 - level)."""
    return unit_cost + np.asarray(holding_per_day, dtype=float) * review_days * level / (1 - level)
