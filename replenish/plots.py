"""Figures logged with each run."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from models.forecast_frame import INTERVAL_QUANTILES, MEAN, MEDIAN, quantile_column  # noqa: E402

HISTORY_DAYS_SHOWN = 56


def fan_chart_figure(
    history: pd.DataFrame,
    actual: pd.DataFrame | None,
    forecast: pd.DataFrame,
    baselines: dict[str, pd.DataFrame] | None = None,
    n_series: int = 4,
    title: str = "",
) -> Figure:
    """Fan charts for the top sellers: history, the forecast's 95% and 80% bands, median and mean, the
    actuals when known, and baseline point forecasts (their means) for comparison.

    ``forecast`` is a forecast frame (q<level> columns and ``mean``); each baseline has a ``mean`` column."""
    top_from = actual if actual is not None else forecast.rename(columns={MEAN: "units"})
    top = top_from.groupby(["item_id", "store_id"])["units"].sum().nlargest(n_series).index
    figure, axes = plt.subplots(len(top), 1, figsize=(10, 2.6 * len(top)), squeeze=False, sharex=True)
    for axis, (item_id, store_id) in zip(axes[:, 0], top, strict=False):

        def pick(frame: pd.DataFrame, item_id: str = item_id, store_id: str = store_id) -> pd.DataFrame:
            return frame[(frame["item_id"] == item_id) & (frame["store_id"] == store_id)].sort_values("date")

        past, predicted = pick(history).tail(HISTORY_DAYS_SHOWN), pick(forecast)
        axis.plot(past["date"], past["units"], color="black", linewidth=1, label="history")
        for (low, high), alpha, label in ((INTERVAL_QUANTILES[95], 0.15, "95%"), (INTERVAL_QUANTILES[80], 0.3, "80%")):
            if low in predicted and high in predicted:
                axis.fill_between(
                    predicted["date"],
                    predicted[low],
                    predicted[high],
                    alpha=alpha,
                    color="tab:blue",
                    linewidth=0,
                    label=label,
                )
        axis.plot(predicted["date"], predicted[quantile_column(MEDIAN)], color="tab:blue", label="median")
        axis.plot(predicted["date"], predicted[MEAN], color="tab:blue", linestyle="--", linewidth=1, label="mean")
        if actual is not None:
            future = pick(actual)
            axis.plot(future["date"], future["units"], color="black", linestyle=":", label="actual")
        for (name, baseline), color in zip(
            (baselines or {}).items(), ("tab:orange", "tab:green", "tab:red", "tab:purple"), strict=False
        ):
            shown = pick(baseline)
            axis.plot(shown["date"], shown[MEAN], color=color, linestyle="--", linewidth=1, label=name)
        axis.set_title(f"{item_id} @ {store_id}", fontsize=9)
        axis.set_ylabel("units")
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=6)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
