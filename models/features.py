"""Model inputs built from long sales: calendar, price and promotion covariates.

Every covariate here is known in advance (calendar) or planned (price, promotion), so the same
function builds the past and the future rows of a series.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SERIES_KEY = ["item_id", "store_id"]
COVARIATE_COLUMNS = ["dow_sin", "dow_cos", "doy_sin", "doy_cos", "promo", "event", "log_relative_price"]


def series_id(frame: pd.DataFrame) -> pd.Series:
    return frame["item_id"].astype(str) + "|" + frame["store_id"].astype(str)


def reference_prices(sales: pd.DataFrame) -> pd.Series:
    """Median observed price per series, the anchor for relative price (NaN when never priced)."""
    return sales.groupby(series_id(sales))["price"].median().rename("reference_price")


def add_covariates(frame: pd.DataFrame, reference_price: pd.Series) -> pd.DataFrame:
    dates = frame["date"]
    day_of_week = dates.dt.day_of_week.to_numpy()
    day_of_year = dates.dt.day_of_year.to_numpy()
    anchor = series_id(frame).map(reference_price).to_numpy(dtype=float)
    price = frame["price"].to_numpy(dtype=float)
    relative = np.log(price / anchor)
    return frame.assign(
        dow_sin=np.sin(2 * np.pi * day_of_week / 7),
        dow_cos=np.cos(2 * np.pi * day_of_week / 7),
        doy_sin=np.sin(2 * np.pi * day_of_year / 365.25),
        doy_cos=np.cos(2 * np.pi * day_of_year / 365.25),
        promo=frame["promo"].astype(float),
        event=frame["event"].astype(float),
        # An unpriced day carries no price signal: neutral, not "free".
        log_relative_price=np.nan_to_num(relative, nan=0.0, posinf=0.0, neginf=0.0),
    )


def future_rows(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The next ``horizon`` days of every series with planned covariates: last price, no promotion, no event."""
    last = history.sort_values("date").groupby(SERIES_KEY, as_index=False).last()
    offsets = pd.to_timedelta(np.arange(1, horizon + 1), unit="D")
    future = last.loc[last.index.repeat(horizon), [*SERIES_KEY, "date", "price"]].reset_index(drop=True)
    future["date"] = future["date"] + np.tile(offsets, len(last))
    return future.assign(units=np.nan, promo=0, event=0, available=1)


def build_feature_frame(sales: pd.DataFrame) -> pd.DataFrame:
    return add_covariates(sales, reference_prices(sales))
