"""Forecast combination: member forecasts weighted per series group, quantiles combined then calibrated.

Weights and interval scales are learned from the members' forecasts at backtest origins *before* the
one being forecast (the holdout), never from it. Each series belongs to a group (its demand class by
ADI and CV², Syntetos and Boylan 2005, or its department); each group gets its own weights and scales,
falling back to those learned on all series where the group has too few scored days.

- **Points:** a weighted average of the members' points; weights by inverse scaled squared error
  (Bates and Granger) or by constrained least squares (non-negative, summing to one).
- **Quantiles:** the combined median plus the weighted average of each member's quantiles' distance
  from its own median (Vincentization of the members that have quantiles; a point-only member moves
  the centre, not the spread). Then each interval (0.1-0.9, 0.025-0.975, ...) is stretched or shrunk
  around the median by the factor that gave it its nominal coverage on the earlier origins (split
  conformal with a scaled score).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from models.ensemble.config import EnsembleConfig, Grouping, Weighting
from models.evaluation import censored
from models.forecast_frame import FORECAST_KEY, MEAN, SERIES_KEY, quantile_column, quantile_levels

ALL_SERIES = "*"  # the group every series falls back to
DEMAND_CLASSES = ("smooth", "intermittent", "lumpy", "erratic")
# Syntetos-Boylan-Croston cut-offs: average inter-demand interval 1.32 days, squared CV of sizes 0.49.
ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
# A year: every weekday and season, recent enough to follow a series that changed its behaviour.
CLASSIFICATION_DAYS = 364
# A group with fewer scored days than this borrows the weights and scales learned on all series.
MIN_GROUP_DAYS = 200
# An interval is never stretched beyond this: members without spread give no evidence to stretch by.
MAX_INTERVAL_SCALE = 10.0
SUM_TO_ONE_PENALTY = 1e3  # least squares: the weight of the row that asks the weights to sum to one


def _by_series(frame: pd.DataFrame) -> list[pd.Series]:
    """The keys that group ``frame``'s rows (or a selection of them) by series: its item_id and store_id."""
    return [frame[column] for column in SERIES_KEY]


def demand_classes(history: pd.DataFrame) -> pd.Series:
    """(item_id, store_id) -> smooth / intermittent / lumpy / erratic, from the uncensored days of the last year:
    ADI = days per day with a sale, CV² = squared coefficient of variation of the non-zero sales."""
    recent = history[
        (history["date"] > history["date"].max() - pd.Timedelta(days=CLASSIFICATION_DAYS)) & ~censored(history)
    ]
    units = recent["units"].astype(float)
    days = units.groupby(_by_series(recent)).size()
    sales = units[units > 0].groupby(_by_series(recent[units > 0]))
    adi = days / sales.size().reindex(days.index).fillna(0.0)  # inf for a series that never sold
    cv2 = (sales.std(ddof=0) / sales.mean()).pow(2).reindex(days.index).fillna(0.0)
    intermittent, variable = adi >= ADI_CUTOFF, cv2 >= CV2_CUTOFF
    classes = np.select(
        [~intermittent & ~variable, intermittent & ~variable, intermittent & variable],
        DEMAND_CLASSES[:3],
        default="erratic",
    )
    return pd.Series(classes, index=days.index, name="group")


def series_groups(history: pd.DataFrame, grouping: Grouping) -> pd.Series:
    """(item_id, store_id) -> the group whose weights and scales it uses."""
    if grouping == "demand_class":
        return demand_classes(history)
    if grouping == "dept_id" and "dept_id" in history:
        return history["dept_id"].astype(str).groupby(_by_series(history)).first().rename("group")
    return pd.Series(ALL_SERIES, index=pd.MultiIndex.from_frame(history[SERIES_KEY].drop_duplicates()), name="group")


@dataclass(frozen=True)
class MemberArrays:
    """Member forecasts aligned on the same rows."""

    keys: pd.DataFrame  # [rows] item_id, store_id, date (and cutoff when the forecasts have one)
    points: np.ndarray  # [rows, members] NaN where a member has no forecast for the row
    quantiles: np.ndarray  # [rows, members, levels] NaN where a member has no quantiles


def _member_quantiles(forecast: pd.DataFrame, levels: tuple[float, ...]) -> np.ndarray:
    """[rows, levels] a member's quantiles at ``levels``; levels it lacks are interpolated in the normal
    scale between the ones it has (flat beyond them). All NaN for a point-only member. Crossing
    quantiles are sorted first (rearrangement), so every member's curve is monotone."""
    columns = quantile_levels(forecast)
    given = list(columns)
    if not given:
        return np.full((len(forecast), len(levels)), np.nan)
    values = np.sort(forecast[list(columns.values())].to_numpy(dtype=float), axis=1)  # [rows, given]
    if len(given) == 1:
        return np.repeat(values, len(levels), axis=1)
    z_given = np.array([NormalDist().inv_cdf(level) for level in given])  # [given]
    z_wanted = np.clip([NormalDist().inv_cdf(level) for level in levels], z_given[0], z_given[-1])  # [levels]
    upper = np.clip(np.searchsorted(z_given, z_wanted), 1, len(given) - 1)  # [levels]
    lower = upper - 1
    fraction = (z_wanted - z_given[lower]) / (z_given[upper] - z_given[lower])  # [levels]
    return values[:, lower] + fraction * (values[:, upper] - values[:, lower])


def align_members(forecasts: dict[str, pd.DataFrame], levels: tuple[float, ...]) -> MemberArrays:
    """``forecasts``: member -> forecast frame (item_id, store_id, date[, cutoff], mean[, q...])."""
    key = [*FORECAST_KEY, *(["cutoff"] if all("cutoff" in frame for frame in forecasts.values()) else [])]
    keys = pd.concat([frame[key] for frame in forecasts.values()]).drop_duplicates().sort_values(key, ignore_index=True)
    points, quantiles = [], []
    for frame in forecasts.values():
        aligned = keys.merge(frame, on=key, how="left")
        points.append(aligned[MEAN].to_numpy(dtype=float))
        quantiles.append(_member_quantiles(aligned, levels))
    return MemberArrays(keys, np.column_stack(points), np.stack(quantiles, axis=1))


def _normalised(weights: np.ndarray, present: np.ndarray) -> np.ndarray:
    """[rows, members] weights of the members present on each row, summing to one (a row with none
    present gets NaN)."""
    masked = weights * present
    total = masked.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, masked / total, np.nan)


def combine_arrays(
    arrays: MemberArrays, row_weights: np.ndarray, row_scales: np.ndarray, levels: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Combined points [rows] and monotone non-negative quantiles [rows, levels].

    ``row_weights``: [rows, members] each row's member weights; ``row_scales``: [rows, levels] the factor
    each quantile's distance from the median is multiplied by (1: uncalibrated)."""
    has_point = ~np.isnan(arrays.points)
    weights = _normalised(row_weights, has_point)  # [rows, members]
    point = np.nansum(weights * np.nan_to_num(arrays.points), axis=1)  # [rows]
    median_index = int(np.argmin(np.abs(np.array(levels) - 0.5)))
    member_median = arrays.quantiles[:, :, median_index]  # [rows, members]
    # A point-only member's centre is its point.
    centres = np.where(np.isnan(member_median), arrays.points, member_median)  # [rows, members]
    centre = np.nansum(weights * np.nan_to_num(centres), axis=1)  # [rows]
    has_spread = ~np.isnan(arrays.quantiles[:, :, 0]) & has_point  # [rows, members]
    spread_weights = np.nan_to_num(_normalised(row_weights, has_spread))  # [rows, members]
    distance = arrays.quantiles - member_median[:, :, None]  # [rows, members, levels]
    combined_distance = np.einsum("rm,rml->rl", spread_weights, np.nan_to_num(distance))  # [rows, levels]
    quantiles = centre[:, None] + row_scales * combined_distance  # [rows, levels]
    # Sorting keeps the levels from crossing where scales differ between levels; then clipped at 0.
    return np.clip(point, 0, None), np.clip(np.sort(quantiles, axis=1), 0, None)


def _squared_scales(history: pd.DataFrame, cutoffs: list[pd.Timestamp]) -> pd.DataFrame:
    """item_id, store_id, cutoff, scale: RMSSE's in-sample scale (mean squared one-step change of the
    uncensored days up to the cutoff)."""
    known = history.loc[~censored(history)].sort_values(FORECAST_KEY)
    parts = []
    for cutoff in cutoffs:
        before = known.loc[(known["date"] <= cutoff).to_numpy()]
        change = before["units"].astype(float).groupby(_by_series(before)).diff()
        scale = change.pow(2).groupby(_by_series(before)).mean()
        parts.append(scale.index.to_frame(index=False).assign(cutoff=cutoff, scale=scale.to_numpy()))
    return pd.concat(parts, ignore_index=True)


def _weights_of(points: np.ndarray, actual: np.ndarray, scale: np.ndarray, weighting: Weighting) -> np.ndarray:
    """[members] weights from rows where every member has a point: ``points`` [rows, members]."""
    members = points.shape[1]
    if weighting == "inverse_loss":
        loss = ((points - actual[:, None]) ** 2 / scale[:, None]).mean(axis=0)  # [members]
        inverse = 1.0 / np.maximum(loss, 1e-12)
        return inverse / inverse.sum()
    # Non-negative least squares on scaled errors, with one heavy row asking the weights to sum to one.
    root = 1.0 / np.sqrt(scale)  # [rows]
    design = np.vstack([points * root[:, None], np.full((1, members), SUM_TO_ONE_PENALTY)])
    target = np.append(actual * root, SUM_TO_ONE_PENALTY)
    weights, _ = nnls(design, target)
    return weights / weights.sum() if weights.sum() > 0 else np.full(members, 1.0 / members)


def _interval_pairs(levels: tuple[float, ...]) -> list[tuple[int, int]]:
    """Index pairs (lower, upper) of the symmetric intervals among ``levels`` (0.1 and 0.9, ...)."""
    return [
        (low, levels.index(round(1 - level, 10)))
        for low, level in enumerate(levels)
        if level < 0.5 and round(1 - level, 10) in levels
    ]


def _interval_scales(
    centre: np.ndarray, distance: np.ndarray, actual: np.ndarray, levels: tuple[float, ...]
) -> np.ndarray:
    """[levels] the factor that gives each symmetric interval its nominal coverage on these rows;
    ``distance`` [rows, levels] from the median ``centre`` [rows]. Levels outside any pair take the
    factor of the nearest intervals in the normal scale (1 where there is no pair)."""
    pairs = _interval_pairs(levels)
    if not pairs:
        return np.ones(len(levels))
    error = actual - centre  # [rows]
    z_pairs, factors = [], []
    for low, high in pairs:
        bound = np.where(error >= 0, distance[:, high], distance[:, low])  # [rows] the side the actual lies on
        with np.errstate(divide="ignore", invalid="ignore"):
            # The smallest factor that covers the row: 0 on the median, inf beyond a zero-width side.
            needed = np.where(error == 0, 0.0, np.where(bound * error > 0, error / bound, np.inf))
        coverage = 1 - 2 * levels[low]
        # Split-conformal quantile with its finite-sample correction.
        rank = min(1.0, np.ceil((len(needed) + 1) * coverage) / len(needed))
        factors.append(min(float(np.quantile(needed, rank, method="higher")), MAX_INTERVAL_SCALE))
        z_pairs.append(NormalDist().inv_cdf(levels[high]))
    order = np.argsort(z_pairs)
    z_levels = np.abs([NormalDist().inv_cdf(level) for level in levels])
    return np.interp(z_levels, np.array(z_pairs)[order], np.array(factors)[order])


@dataclass(frozen=True)
class Combination:
    """Learned weights and interval scales: group -> member -> weight, group -> level -> scale."""

    members: tuple[str, ...]
    levels: tuple[float, ...]
    weights: dict[str, dict[str, float]]
    scales: dict[str, dict[float, float]] = field(default_factory=dict)

    def row_weights(self, groups: np.ndarray) -> np.ndarray:
        """[rows, members] for each row's group, the all-series weights where the group learned none."""
        table = {group: np.array([by_member[m] for m in self.members]) for group, by_member in self.weights.items()}
        return (
            np.stack([table.get(group, table[ALL_SERIES]) for group in groups])
            if len(groups)
            else (np.empty((0, len(self.members))))
        )

    def row_scales(self, groups: np.ndarray) -> np.ndarray:
        """[rows, levels] interval scales of each row's group (1 everywhere when uncalibrated)."""
        if not self.scales:
            return np.ones((len(groups), len(self.levels)))
        table = {group: np.array([by_level[level] for level in self.levels]) for group, by_level in self.scales.items()}
        return (
            np.stack([table.get(group, table[ALL_SERIES]) for group in groups])
            if len(groups)
            else (np.empty((0, len(self.levels))))
        )

    def as_dict(self) -> dict:
        return {
            "members": list(self.members),
            "levels": list(self.levels),
            "weights": self.weights,
            "scales": {
                group: {str(level): scale for level, scale in by_level.items()}
                for group, by_level in self.scales.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> Combination:
        return cls(
            tuple(data["members"]),
            tuple(data["levels"]),
            data["weights"],
            {
                group: {float(level): scale for level, scale in by_level.items()}
                for group, by_level in data["scales"].items()
            },
        )


def _groups_of(keys: pd.DataFrame, groups: pd.Series) -> np.ndarray:
    """[rows] each row's group; series the grouping does not know fall back to all series."""
    return groups.reindex(pd.MultiIndex.from_frame(keys[SERIES_KEY])).fillna(ALL_SERIES).to_numpy(dtype=object)


def fit_combination(
    forecasts: dict[str, pd.DataFrame],
    actual: pd.DataFrame,
    history: pd.DataFrame,
    groups: pd.Series,
    levels: tuple[float, ...],
    config: EnsembleConfig,
) -> Combination:
    """Learn weights (and interval scales) from member forecasts at earlier origins.

    ``forecasts``: member -> common-shape frames with a ``cutoff`` column, at origins before the one
    to be forecast; ``actual``: the units of those windows; ``history``: sales up to at least their
    last day (the in-sample scales use only days up to each cutoff); ``groups``: (item_id, store_id) -> group."""
    members = tuple(forecasts)
    arrays = align_members(forecasts, levels)
    scored = arrays.keys.merge(actual.loc[~censored(actual), [*FORECAST_KEY, "units"]], on=FORECAST_KEY, how="left")
    scales = arrays.keys.merge(
        _squared_scales(history, sorted(arrays.keys["cutoff"].unique())), on=[*SERIES_KEY, "cutoff"], how="left"
    )
    units, scale = scored["units"].to_numpy(dtype=float), scales["scale"].to_numpy(dtype=float)
    row_groups = _groups_of(arrays.keys, groups)
    # Rows every member forecast, with a known actual and a usable scale.
    usable = ~np.isnan(arrays.points).any(axis=1) & ~np.isnan(units) & (scale > 0)

    weights: dict[str, dict[str, float]] = {}
    for group in [ALL_SERIES, *sorted(set(row_groups) - {ALL_SERIES})]:
        rows = usable & ((row_groups == group) | (group == ALL_SERIES))
        if rows.sum() >= MIN_GROUP_DAYS or (group == ALL_SERIES and rows.any()):
            weights[group] = dict(
                zip(
                    members,
                    _weights_of(arrays.points[rows], units[rows], scale[rows], config.weighting).tolist(),
                    strict=False,
                )
            )
    if ALL_SERIES not in weights:  # nothing scored at all: equal weights
        weights[ALL_SERIES] = dict.fromkeys(members, 1.0 / len(members))
    combination = Combination(members, levels, weights)
    if not config.calibrate:
        return combination

    _, quantiles = combine_arrays(
        arrays, combination.row_weights(row_groups), combination.row_scales(row_groups), levels
    )
    median_index = int(np.argmin(np.abs(np.array(levels) - 0.5)))
    centre = quantiles[:, median_index]
    distance = quantiles - centre[:, None]
    # Rows with no spread at all (no member with quantiles there) say nothing about how far to stretch one.
    known = ~np.isnan(units) & ~np.isnan(arrays.points).all(axis=1) & (distance[:, -1] > distance[:, 0])
    scales_by_group: dict[str, dict[float, float]] = {}
    for group in [ALL_SERIES, *sorted(set(row_groups) - {ALL_SERIES})]:
        rows = known & ((row_groups == group) | (group == ALL_SERIES))
        if rows.sum() >= MIN_GROUP_DAYS or (group == ALL_SERIES and rows.any()):
            factors = _interval_scales(centre[rows], distance[rows], units[rows], levels)
            scales_by_group[group] = dict(zip(levels, factors.tolist(), strict=False))
    return Combination(members, levels, weights, scales_by_group or {ALL_SERIES: dict.fromkeys(levels, 1.0)})


def combine(forecasts: dict[str, pd.DataFrame], combination: Combination, groups: pd.Series) -> pd.DataFrame:
    """The combined forecast frame: item_id, store_id, date[, cutoff], mean, q<level>..."""
    arrays = align_members({member: forecasts[member] for member in combination.members}, combination.levels)
    row_groups = _groups_of(arrays.keys, groups)
    point, quantiles = combine_arrays(
        arrays, combination.row_weights(row_groups), combination.row_scales(row_groups), combination.levels
    )
    return arrays.keys.assign(
        **{MEAN: point},
        **{quantile_column(level): quantiles[:, position] for position, level in enumerate(combination.levels)},
    )
