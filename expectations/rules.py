"""The data contract's settings, apart from the suites that apply them: the settings object embeds
them without importing Great Expectations."""

from __future__ import annotations

from dataclasses import dataclass

from replenish.bounds import require_in_range


@dataclass(frozen=True)
class ValidationRules:
    """The data contract's knobs (settings: data.validation); the rules themselves are the suites."""

    # Counted in the data's periods (days, weeks or months). None: two weeks of days, four weeks, three
    # months (replenish.frequency.Frequency.max_gap).
    max_gap_periods: int | None = None  # longest run of absent periods allowed without closed=1 rows
    recent_periods: int | None = (
        None  # window the drift warnings compare with the history before it; None: about four weeks
    )
    level_shift_ratio: float = 3.0  # warn when recent mean demand moves by more than this factor
    zero_share_jump: float = 0.3  # warn when the share of zero-sales days rises by more
    quarantine: bool = False  # drop rows that break row rules (reported), instead of stopping the run

    def __post_init__(self) -> None:
        holds = {
            "max_gap_periods": self.max_gap_periods is None or self.max_gap_periods >= 1,
            "recent_periods": self.recent_periods is None or self.recent_periods >= 1,
            "level_shift_ratio": self.level_shift_ratio > 1,
            "zero_share_jump": 0 < self.zero_share_jump < 1,
        }
        require_in_range(
            self,
            holds,
            "validation rules",
            "max_gap_periods and recent_periods at least 1, level_shift_ratio above 1, zero_share_jump between 0 and 1",
        )
