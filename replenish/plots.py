"""Figures logged with each run."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

HISTORY_DAYS_SHOWN = 56


def holdout_forecast_figure(
    history: pd.DataFrame, actual: pd.DataFrame, lstm_forecast: pd.DataFrame,
    naive_forecast: pd.DataFrame, n_series: int = 4,
) -> Figure:
    """History, holdout actuals, the LSTM median with its 80% band and the seasonal naive for the top sellers."""
    top = actual.groupby(["item_id", "store_id"])["units"].sum().nlargest(n_series).index
    figure, axes = plt.subplots(len(top), 1, figsize=(10, 2.6 * len(top)), squeeze=False, sharex=True)
    for axis, (item_id, store_id) in zip(axes[:, 0], top):
        def pick(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[(frame["item_id"] == item_id) & (frame["store_id"] == store_id)].sort_values("date")

        past = pick(history).tail(HISTORY_DAYS_SHOWN)
        future, lstm, naive = pick(actual), pick(lstm_forecast), pick(naive_forecast)
        axis.plot(past["date"], past["units"], color="black", linewidth=1, label="history")
        axis.plot(future["date"], future["units"], color="black", linestyle=":", label="actual")
        axis.fill_between(lstm["date"], lstm["q0.1"], lstm["q0.9"], alpha=0.25, color="tab:blue", label="LSTM 80%")
        axis.plot(lstm["date"], lstm["q0.5"], color="tab:blue", label="LSTM median")
        axis.plot(naive["date"], naive["seasonal_naive"], color="tab:orange", linestyle="--", label="seasonal naive")
        axis.set_title(f"{item_id} @ {store_id}", fontsize=9)
        axis.set_ylabel("units")
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=5)
    figure.tight_layout()
    return figure
