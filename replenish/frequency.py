"""The sales' time step: days, weeks ending on one weekday, or months.

Every count of time downstream is in these periods: the forecast and planning horizons, the network's
context, lags and rolling windows, the season, lead times and the review cycle. Lead times and review
cycles the item master gives in days become periods by rounding up (an order that takes 8 days to
arrive is not there within one week).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class Frequency:
    """One of "D", "W-MON" … "W-SUN" (weeks labelled by their last day, a weekday) or "MS" / "ME"
    (months labelled by their first or last day): pandas' offset aliases."""

    alias: str

    def __post_init__(self) -> None:
        if self.alias not in {"D", "MS", "ME", *(f"W-{day}" for day in WEEKDAYS)}:
            raise ValueError(
                f"frequency {self.alias!r} is not one of D, W-MON … W-SUN (W alone is W-SUN), MS or ME (M alone is MS)"
            )

    @classmethod
    def parse(cls, text: str) -> Frequency:
        """A declared frequency: D, W (weeks ending Sunday), W-FRI and the like, M (month start), MS or ME."""
        alias = text.strip().upper()
        return cls({"W": "W-SUN", "M": "MS"}.get(alias, alias))

    @property
    def kind(self) -> str:
        """D, W or M."""
        return self.alias[0]

    @property
    def period_alias(self) -> str:
        return "M" if self.kind == "M" else self.alias

    @property
    def name(self) -> str:
        return {"D": "day", "W": "week", "M": "month"}[self.kind]

    @property
    def description(self) -> str:
        if self.kind == "W":
            weekday = pd.Timestamp("2024-01-01") + pd.Timedelta(days=WEEKDAYS.index(self.alias[2:]))  # a Monday
            return f"weekly ({self.alias}: weeks ending {weekday.day_name()})"
        if self.kind == "M":
            return f"monthly ({self.alias}: dated the {'first' if self.alias == 'MS' else 'last'} day of the month)"
        return "daily (D)"

    @property
    def season_length(self) -> int:
        """Periods in the dominant cycle: a week of days, a year of weeks or of months."""
        return {"D": 7, "W": 52, "M": 12}[self.kind]

    @property
    def days_per_period(self) -> float:
        return {"D": 1.0, "W": 7.0, "M": DAYS_PER_MONTH}[self.kind]

    @property
    def default_horizon(self) -> int:
        """Four weeks, a quarter of weeks, half a year of months."""
        return {"D": 28, "W": 13, "M": 6}[self.kind]

    @property
    def rolling_windows(self) -> tuple[int, int]:
        """The network's rolling means of the past: about a week and a month; a month and a quarter;
        a quarter and a year."""
        return {"D": (7, 28), "W": (4, 13), "M": (3, 12)}[self.kind]

    @property
    def seasonal_lags(self) -> tuple[int, ...]:
        """Values the network reads for every forecast period: the same weekday one and four weeks
        before; the last week and the same week a year before; the last month and a year before."""
        return {"D": (7, 28), "W": (1, 52), "M": (1, 12)}[self.kind]

    @property
    def recent_periods(self) -> int:
        """The window recent demand is measured over (opening stock, drift warnings): four weeks of days
        or weeks, a quarter of months."""
        return {"D": 28, "W": 4, "M": 3}[self.kind]

    @property
    def max_gap(self) -> int:
        """The longest run of absent periods inside a series the data contract allows by default."""
        return {"D": 14, "W": 4, "M": 3}[self.kind]

    def periods_in_days(self, days: float) -> int:
        """Whole periods that cover ``days``, rounded up: a lead time of 8 days is 2 weeks."""
        return int(self.periods_in_days_array(np.array([days]))[0])

    def periods_in_days_array(self, days: pd.Series | np.ndarray) -> np.ndarray:
        # The tolerance keeps 30.4375 days a month, times a whole number of months, from rounding up.
        return np.ceil(np.asarray(days, dtype=float) / self.days_per_period - 1e-9).astype(np.int64)

    def ordinals(self, dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """Period numbers of dates: consecutive periods differ by one."""
        return pd.PeriodIndex(pd.DatetimeIndex(dates), freq=self.period_alias).asi8.astype(np.int64)

    def dates(self, ordinals: np.ndarray) -> pd.DatetimeIndex:
        """The dates that label periods, the inverse of ``ordinals`` for dates on this frequency."""
        periods = pd.PeriodIndex.from_ordinals(np.asarray(ordinals, dtype=np.int64), freq=self.period_alias)
        labels = periods.start_time if self.alias in {"D", "MS"} else periods.end_time
        return pd.DatetimeIndex(labels).normalize().astype("datetime64[ns]")

    def on_calendar(self, dates: pd.Series) -> pd.Series:
        """Whether each date labels a period: any day, the weeks' weekday, the months' first or last day."""
        if self.kind == "D":
            return pd.Series(True, index=dates.index)
        if self.kind == "W":
            return dates.dt.day_of_week == WEEKDAYS.index(self.alias[2:])
        return dates.dt.is_month_start if self.alias == "MS" else dates.dt.is_month_end

    def periods_since(self, start: pd.Timestamp, dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """How many periods after ``start``'s each date is (0 for its own period)."""
        return self.ordinals(dates) - self.ordinals(pd.DatetimeIndex([start]))[0]

    def dates_from(self, start: pd.Timestamp, periods: np.ndarray) -> pd.DatetimeIndex:
        """The dates of the periods ``periods`` after ``start``'s."""
        return self.dates(self.ordinals(pd.DatetimeIndex([start]))[0] + np.asarray(periods, dtype=np.int64))

    def after(self, last: pd.Timestamp, periods: int) -> pd.DatetimeIndex:
        """The ``periods`` period dates following ``last``."""
        return self.dates_from(last, np.arange(1, periods + 1))

    def shift(self, date: pd.Timestamp, periods: int) -> pd.Timestamp:
        """The date of the period ``periods`` after (before, when negative) ``date``'s."""
        return self.dates_from(date, np.array([periods]))[0]


DAILY = Frequency("D")


# A series' own step when its dates fit no frequency, and when it has a single date to tell by.
IRREGULAR = "irregular"
UNKNOWN = ""


@dataclass(frozen=True)
class InferredFrequency:
    frequency: Frequency | None  # None: no series has two dates to tell by, or no series' dates fit a frequency
    series_frequency: pd.Series  # per sales row: its series' own ("D", "W-FRI", "MS", …, IRREGULAR or UNKNOWN)


def _series_step(dates: pd.Series, series: pd.Series) -> pd.Series:
    """Each series' own frequency, per row: from its shortest step between dates and the days they fall on."""
    rows = pd.DataFrame({"series": series, "date": dates}).dropna()
    step = rows.sort_values(["series", "date"]).groupby("series", sort=False)["date"].diff().dt.days
    rows = rows.assign(
        step=step.where(step > 0),  # a repeated date is a duplicate row, which a rule of its own reports
        weekday=rows["date"].dt.day_of_week,
        month_start=rows["date"].dt.is_month_start,
        month_end=rows["date"].dt.is_month_end,
    )
    by_series = rows.groupby("series", sort=False).agg(
        shortest=("step", "min"),
        weekdays=("weekday", "nunique"),
        weekday=("weekday", "first"),
        month_starts=("month_start", "all"),
        month_ends=("month_end", "all"),
    )
    shortest = by_series["shortest"]
    weekly = (shortest % 7 == 0) & (by_series["weekdays"] == 1)
    monthly = shortest.between(28, 31)
    kind = np.select(
        [
            shortest == 1,
            weekly,
            monthly & by_series["month_starts"],
            monthly & by_series["month_ends"],
        ],
        ["D", "W-" + by_series["weekday"].map(lambda day: WEEKDAYS[int(day)]).astype(object), "MS", "ME"],
        default=IRREGULAR,
    )
    kind = np.where(shortest.isna(), UNKNOWN, kind)  # a single date has no step to tell by
    return series.map(pd.Series(kind, index=by_series.index)).fillna(UNKNOWN)


def infer_frequency(dates: pd.Series, series: pd.Series) -> InferredFrequency:
    """The frequency most sales rows' series follow, from each series' shortest step between dates.

    A daily series with days missing still steps by one day somewhere; a weekly one steps by whole
    weeks on one weekday; a monthly one by 28-31 days on month starts (or ends)."""
    per_row = _series_step(dates, series)
    known = per_row[~per_row.isin([UNKNOWN, IRREGULAR])]
    if known.empty:
        return InferredFrequency(None, per_row)
    return InferredFrequency(Frequency(str(known.value_counts().idxmax())), per_row)


def frequency_of(dates: pd.Series) -> Frequency:
    """The frequency of a completed frame, whose every series is on one regular grid of period dates
    (``complete_tables`` makes it so): told by the distinct dates; daily when there is a single one."""
    distinct = pd.Series(pd.unique(dates.dropna()))
    if len(distinct) < 2:
        return DAILY
    inferred = infer_frequency(distinct, pd.Series("all", index=distinct.index)).frequency
    if inferred is None:
        raise ValueError(f"the dates are on no regular grid of days, weeks or months (from {distinct.min():%Y-%m-%d})")
    return inferred
