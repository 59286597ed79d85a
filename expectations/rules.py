"""The data contract's settings, apart from the suites that apply them: the settings object embeds
them without importing Great Expectations."""

from __future__ import annotations

from dataclasses import dataclass

from replenish.bounds import require_in_range


@dataclass(frozen=True)
class ValidationRules:
    """The data contract's knobs (settings: data.validation); the rules themselves are the suites."""

    max_gap_days: int = 14  # longest run of missing days allowed without closed=1 rows
    recent_days: int = 28  # window compared with the history before it by the drift warnings
    level_shift_ratio: float = 3.0  # warn when recent mean demand moves by more than this factor
    zero_share_jump: float = 0.3  # warn when the share of zero-sales days rises by more
    quarantine: bool = False  # drop rows that break row rules (reported), instead of stopping the run

    def __post_init__(self) -> None:
        holds = {
            "max_gap_days": self.max_gap_days >= 1,
            "recent_days": self.recent_days >= 7,
            "level_shift_ratio": self.level_shift_ratio > 1,
            "zero_share_jump": 0 < self.zero_share_jump < 1,
        }
        require_in_range(
            self,
            holds,
            "validation rules",
            "max_gap_days at least 1, recent_days at least 7, "
            "level_shift_ratio above 1, zero_share_jump between 0 and 1",
        )
