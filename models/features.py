"""Model inputs built from long sales: calendar, price, promotion and the series' categorical ids.

Every covariate here is known in advance (calendar, events, SNAP) or planned (price, promotion), so
the same function builds the past and the future rows of a series. Lags and rolling statistics of
the target are computed inside the network from the window it sees (see ``models.lstm.module``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.forecast_frame import SERIES_KEY, series_codes
from replenish.frequency import frequency_of

# Embedded ids, coarsest last; a missing hierarchy column is one "unknown" group.
CATEGORY_COLUMNS = ["item_id", "store_id", "dept_id", "cat_id"]
COVARIATE_COLUMNS = [
    "dow_sin",
    "dow_cos",
    "month_sin",
    "month_cos",
    "doy_sin",
    "doy_cos",
    "promo",
    "event",
    "snap",
    "log_relative_price",
    "price_change",
]
# Flags a source may lack, and the value their absence stands for.
OPTIONAL_FLAGS = {"promo": 0, "event": 0, "snap": 0}


def reference_prices(sales: pd.DataFrame) -> pd.Series:
    """Median observed price per series, indexed by (item_id, store_id): the anchor for relative price
    (NaN when never priced)."""
    return sales.groupby(SERIES_KEY, dropna=False, observed=True)["price"].median().rename("reference_price")


def _cyclic(values: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    return np.sin(2 * np.pi * values / period), np.cos(2 * np.pi * values / period)


def add_covariates(frame: pd.DataFrame, reference_price: pd.Series) -> pd.DataFrame:
    # A flag may be missing from a source, or from the history but not the planned future rows.
    frame = frame.assign(
        **{flag: frame[flag].fillna(default) if flag in frame else default for flag, default in OPTIONAL_FLAGS.items()}
    )
    frame = frame.sort_values([*SERIES_KEY, "date"], kind="stable").reset_index(drop=True)
    dates = frame["date"]
    ids = series_codes(frame)
    frequency = frequency_of(dates)
    # A week or a month has no weekday: the columns stay (one network shape), constant there.
    weekday = dates.dt.day_of_week.to_numpy() if frequency.kind == "D" else np.zeros(len(frame))
    dow_sin, dow_cos = _cyclic(weekday, 7)
    month_sin, month_cos = _cyclic(dates.dt.month.to_numpy() - 1, 12)
    doy_sin, doy_cos = _cyclic(dates.dt.day_of_year.to_numpy(), 365.25)
    price = frame["price"].to_numpy(dtype=float)
    anchor = reference_price.reindex(pd.MultiIndex.from_frame(frame[SERIES_KEY])).to_numpy(dtype=float)
    week_before = frame.groupby(ids)["price"].shift(frequency.periods_in_days(7)).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative, change = np.log(price / anchor), np.log(price / week_before)
    covariates = {
        "dow_sin": dow_sin,
        "dow_cos": dow_cos,
        "month_sin": month_sin,
        "month_cos": month_cos,
        "doy_sin": doy_sin,
        "doy_cos": doy_cos,
        "promo": frame["promo"],
        "event": frame["event"],
        "snap": frame["snap"],
        # An unpriced day carries no price signal: neutral, not "free".
        "log_relative_price": np.nan_to_num(relative, nan=0.0, posinf=0.0, neginf=0.0),
        "price_change": np.nan_to_num(change, nan=0.0, posinf=0.0, neginf=0.0),
    }
    # float32, the network's own precision: half the memory of float64 at millions of rows.
    return frame.assign(**{name: np.asarray(values, dtype=np.float32) for name, values in covariates.items()})


def future_rows(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The next ``horizon`` periods of every series with planned covariates: last price, no promotion, no event."""
    frequency = frequency_of(history["date"])
    last = history.sort_values("date").groupby(SERIES_KEY, as_index=False).last()
    kept = [column for column in [*CATEGORY_COLUMNS, "date", "price"] if column in last]
    future = last.loc[last.index.repeat(horizon), kept].reset_index(drop=True)
    last_period = frequency.ordinals(last["date"])
    future["date"] = frequency.dates(np.repeat(last_period, horizon) + np.tile(np.arange(1, horizon + 1), len(last)))
    return future.assign(units=np.nan, promo=0, event=0, snap=0, available=1)


def build_feature_frame(sales: pd.DataFrame) -> pd.DataFrame:
    return add_covariates(sales, reference_prices(sales))
