"""When monitoring asks for retraining (settings: monitoring): light to import, as the settings embed it."""

from __future__ import annotations

from dataclasses import dataclass

from replenish.bounds import require_in_range


@dataclass(frozen=True)
class MonitoringThresholds:
    # Retrain when recent RMSSE exceeds the model's own validation RMSSE by this factor...
    rmsse_ratio_to_validation: float = 1.3
    # ...or is this factor worse than a seasonal naive forecast of the same days...
    rmsse_ratio_to_naive: float = 1.0
    # ...or when demand or price drifted this far (population stability index).
    psi_limit: float = 0.5
    min_days: int = 7  # fewer scored days than this say nothing yet

    def __post_init__(self) -> None:
        holds = {
            "rmsse_ratio_to_validation": self.rmsse_ratio_to_validation > 0,
            "rmsse_ratio_to_naive": self.rmsse_ratio_to_naive > 0,
            "psi_limit": self.psi_limit > 0,
            "min_days": self.min_days >= 1,
        }
        require_in_range(self, holds, "monitoring thresholds", "ratios and psi_limit above 0, min_days at least 1")
