"""The ensemble's configuration: light to import, as the settings embed it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Grouping = Literal["demand_class", "dept_id", "none"]
Weighting = Literal["inverse_loss", "least_squares"]


@dataclass(frozen=True)
class EnsembleConfig:
    """How the ensemble combines its members: the LSTM and baselines of the backtest."""

    # Members the backtest scores; others named here are left out (an ensemble of one member is not fitted).
    # TSB left out: on the tuning windows it added nothing beside AutoETS and cost coverage.
    members: tuple[str, ...] = ("lstm", "lightgbm", "auto_ets")
    # Series groups with their own weights and interval scales: demand class by ADI and CV², department, or none.
    grouping: Grouping = "demand_class"
    # Point weights: inverse scaled squared error, or non-negative least squares summing to one.
    weighting: Weighting = "inverse_loss"
    calibrate: bool = True  # scale each interval to its nominal coverage on the earlier origins
    # Backtest origins before the forecast one that a backtest forecaster learns from (the training flow
    # learns from its own origins before the holdout). One scored as well as two on the tuning windows,
    # at one extra fit per member and origin instead of two.
    calibration_origins: int = 1

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("the ensemble needs at least one member")
        if self.calibration_origins < 1:
            raise ValueError(f"calibration_origins = {self.calibration_origins}: need at least 1")
