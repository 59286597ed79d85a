"""The forecast frame: the one shape every forecast takes inside the project, defined here once.

One row per series and period: ``item_id, store_id, date, mean, q<level>...`` in units, a column per
quantile level (``q0.1``, ``q0.5``, ...). The LSTM, the ensemble and the MLflow pyfunc model give it;
planning, monitoring and the reports read it. A backtest's frame is the same plus ``cutoff`` (the last
period the model saw); ``mean`` is the point forecast it scores (a baseline's own point forecast, and
without quantiles where the model has no distribution).

A series is the pair (item_id, store_id), kept as its two columns. Where a tool needs one id per series
(Nixtla's ``unique_id``, a row of the LSTM's panel), ``SeriesCodes`` numbers the pairs and maps the
results back through its table of pairs: item and store ids are never joined into one string, so any
character may appear in either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SERIES_KEY = ["item_id", "store_id"]
FORECAST_KEY = [*SERIES_KEY, "date"]
MEAN = "mean"  # the forecast frame's expected units: its point forecast
QUANTILE_PREFIX = "q"
MEDIAN = 0.5


def quantile_column(level: float) -> str:
    """The column of the quantile ``level``: 0.1 -> "q0.1"."""
    return f"{QUANTILE_PREFIX}{level:g}"


def quantile_level(column: object) -> float | None:
    """The level of a quantile column ("q0.1" -> 0.1); None for any other column."""
    if not (isinstance(column, str) and column.startswith(QUANTILE_PREFIX)):
        return None
    try:
        level = float(column.removeprefix(QUANTILE_PREFIX))
    except ValueError:
        return None
    return level if 0 < level < 1 else None


def quantile_levels(frame: pd.DataFrame) -> dict[float, str]:
    """Quantile level -> column of ``frame``, in increasing level order."""
    levels = {level: column for column in frame.columns if (level := quantile_level(column)) is not None}
    return dict(sorted(levels.items()))


# The backtest protocol's quantiles: its 80% and 95% intervals, and the levels of its pinball loss.
PROTOCOL_LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)
QUANTILE_COLUMNS = tuple(quantile_column(level) for level in PROTOCOL_LEVELS)
INTERVAL_LEVELS = {80: (0.1, 0.9), 95: (0.025, 0.975)}  # coverage % -> its lower and upper quantile
PINBALL_LEVELS = (0.1, 0.5, 0.9)
INTERVAL_QUANTILES = {
    coverage: (quantile_column(low), quantile_column(high)) for coverage, (low, high) in INTERVAL_LEVELS.items()
}
PINBALL_QUANTILES = {level: quantile_column(level) for level in PINBALL_LEVELS}


def series_codes(frame: pd.DataFrame) -> pd.Series:
    """[rows] a number per (item_id, store_id) pair, to group ``frame``'s rows by series."""
    return frame.groupby(SERIES_KEY, sort=False, observed=True, dropna=False).ngroup()


@dataclass(frozen=True)
class SeriesCodes:
    """One integer code per series for the tools that take a single id: a code is a row of ``keys``."""

    keys: pd.DataFrame  # [series] item_id, store_id, sorted; code i is row i

    @classmethod
    def of(cls, *frames: pd.DataFrame) -> SeriesCodes:
        """The codes of every series in ``frames``, numbered in (item_id, store_id) order."""
        pairs = pd.concat([frame[SERIES_KEY] for frame in frames], ignore_index=True).drop_duplicates()
        return cls(pairs.sort_values(SERIES_KEY, kind="stable", ignore_index=True))

    def __len__(self) -> int:
        return len(self.keys)

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """[rows] the code of each row's series, found by joining on the table of pairs."""
        codes = pd.MultiIndex.from_frame(self.keys).get_indexer(pd.MultiIndex.from_frame(frame[SERIES_KEY]))
        if (codes < 0).any():
            raise ValueError("a series that was not among the frames these codes were made of")
        return codes

    def keys_of(self, codes: np.ndarray | pd.Series) -> pd.DataFrame:
        """[len(codes)] the item_id and store_id of each code."""
        return self.keys.iloc[np.asarray(codes, dtype=np.int64)].reset_index(drop=True)
