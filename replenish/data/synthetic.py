"""Seeded synthetic retail data with the patterns replenishment has to cope with.

Demand per item × store × day is a gamma-Poisson (negative binomial) draw around a mean built from
weekly and yearly seasonality, a trend, event days, price elasticity and promotions. A share of
items are slow movers (low rates, heavy dispersion, mostly zeros). Stockout spells censor sales:
available = 0 and units = 0. Everything is drawn from one numpy Generator, so a seed fixes the data.

Weekly and monthly sets are the same daily simulation summed to whole periods, so a seed gives the
same demand at every frequency. `generate_intermittent_monthly` is a separate, spare-parts-like
monthly set: most months without demand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from replenish.data.tables import RECENT_DEMAND_DAYS, RawTables
from replenish.frequency import Frequency

CATEGORIES = ("FOODS", "HOUSEHOLD", "HOBBIES")
DEPTS_PER_CATEGORY = 2

# Relative demand lift by weekday, Monday first: weekend shopping peak, mid-week trough.
WEEKDAY_PROFILE = np.array([-0.12, -0.15, -0.10, -0.02, 0.10, 0.32, 0.20])
# Fixed retail event days (month * 100 + day), each year: Valentine's, Memorial weekend,
# Independence Day, Halloween, Thanksgiving, Christmas Eve.
EVENT_MONTH_DAYS = (214, 526, 704, 1031, 1128, 1224)
DAYS_PER_YEAR = 365.25

FAST_DISPERSION_SHAPE = 5.0  # gamma shape of the demand noise: mild overdispersion
SLOW_DISPERSION_SHAPE = 0.5  # heavy overdispersion: lumpy, intermittent demand
SLOW_RATE_RANGE = (0.1, 0.6)  # mean units per day of a slow mover
FAST_MEDIAN_RATE = 8.0
FAST_MIN_RATE = 3.0

PRICE_CHANGE_WEEKLY_PROBABILITY = 1 / 26  # regular price moves about twice a year
PROMO_WEEKLY_PROBABILITY = 0.06
PROMO_DISCOUNT_RANGE = (0.10, 0.30)
STOCKOUT_DAILY_START_PROBABILITY = 1 / 150
STOCKOUT_DAYS_RANGE = (3, 14)
OPEN_ORDER_PROBABILITY = 0.3
CAPACITY_HEADROOM_RANGE = (2.0, 3.0)  # store capacity / volume of on hand plus open orders

# The spare-parts set: a part has demand in a month with a probability drawn per part, mean 0.25 (so
# about three months in four are zero); Beta(2, 6) rather than Beta(1, 3), which has the same mean,
# because its thinner tail near zero leaves few parts without any demand in four years.
PART_DEMAND_PROBABILITY_BETA = (2.0, 6.0)
PART_MEDIAN_EXTRA_UNITS = 1.5  # a demand month's size is 1 + a gamma-Poisson draw around a per-part mean
PART_SIZE_DISPERSION_SHAPE = 1.0
PART_TRENDING_SHARE = 0.2  # parts whose demand probability drifts: an installed base growing or retiring
PART_YEARLY_TREND_SD = 0.3  # log change per year of a trending part's demand probability
PART_MAX_DEMAND_PROBABILITY = 0.95
WAREHOUSES = 3


@dataclass(frozen=True)
class SyntheticConfig:
    """Size, calendar start and seed of a synthetic data set; `slow_mover_share` of items are intermittent.

    `n_days` days are simulated whatever the `frequency`; "W" and "M" sum them to the weeks (ending
    Sunday) or calendar months that lie wholly inside those days."""

    n_items: int = 20
    n_stores: int = 2
    n_days: int = 365
    start_date: date = date(2024, 1, 1)
    seed: int = 7
    slow_mover_share: float = 0.25
    frequency: str = "D"  # D, W or M

    def __post_init__(self) -> None:
        for name in ("n_items", "n_stores", "n_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.slow_mover_share <= 1.0:
            raise ValueError(f"slow_mover_share must be in [0, 1], got {self.slow_mover_share}")
        if self.frequency not in {"D", "W", "M"}:
            raise ValueError(f"frequency must be D, W or M, got {self.frequency!r}")
        if not len(_complete_periods(self.simulated_dates, self.sales_frequency).labels):
            raise ValueError(
                f"n_days = {self.n_days} from {self.start_date} holds no whole {self.sales_frequency.name}"
            )

    @property
    def sales_frequency(self) -> Frequency:
        """W is weeks ending Sunday, labelled by the Sunday; M is calendar months, labelled by their first day."""
        return Frequency.parse(self.frequency)

    @property
    def simulated_dates(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start_date, periods=self.n_days, freq="D")


@dataclass(frozen=True)
class _Items:
    item_id: np.ndarray
    dept_id: np.ndarray
    cat_id: np.ndarray
    base_rate: np.ndarray
    dispersion_shape: np.ndarray
    base_price: np.ndarray
    elasticity: np.ndarray
    weekly_amplitude: np.ndarray
    yearly_amplitude: np.ndarray
    yearly_phase_days: np.ndarray
    yearly_trend: np.ndarray
    event_lift: np.ndarray
    promo_lift: np.ndarray


@dataclass(frozen=True)
class _Series:
    """Item × store series, item-major; every matrix is series × day (series × period once summed)."""

    item: np.ndarray
    store: np.ndarray
    mean_demand: np.ndarray
    units: np.ndarray
    price: np.ndarray
    promo: np.ndarray
    available: np.ndarray


def generate_synthetic(config: SyntheticConfig) -> RawTables:
    """Sales, item master, inventory snapshot, open orders and store capacity for one seed.

    Weekly and monthly sales are the daily simulation summed to periods after every draw, so the
    daily data of a seed is the same whatever the frequency. The inventory and open orders stay the
    daily simulation's; the open orders arrive, and the suppliers take orders, counting from the last
    day the sales cover (a week's Sunday, a month's last day), so every open order lands after the
    last sales period and the first plan has orders due."""
    rng = np.random.default_rng(config.seed)
    dates = config.simulated_dates
    items = _draw_items(rng, config)
    is_event_day = np.isin(dates.month * 100 + dates.day, EVENT_MONTH_DAYS)
    series = _draw_series(rng, config, items, dates, is_event_day)
    store_ids = np.array([f"STORE_{store + 1}" for store in range(config.n_stores)])
    sales_series, sales_dates, is_event_period, last_day_covered = _to_periods(
        series, dates, is_event_day, config.sales_frequency
    )

    item_master = _item_master(rng, items, (last_day_covered + pd.Timedelta(days=1)).weekday())
    inventory = _inventory(rng, series, items, store_ids)
    open_orders = _open_orders(rng, series, items, store_ids, item_master, last_day_covered)
    source = f"synthetic(seed={config.seed})"
    return RawTables(
        sales=_sales_frame(sales_series, items, store_ids, sales_dates, is_event_period),
        items=item_master,
        inventory=inventory,
        open_orders=open_orders,
        capacity=_capacity(rng, store_ids, inventory, open_orders, item_master),
        sources={table: source for table in ("sales", "items", "inventory", "open_orders", "capacity")},
    )


def _draw_items(rng: np.random.Generator, config: SyntheticConfig) -> _Items:
    n_items = config.n_items
    dept_names = [f"{category}_{k + 1}" for category in CATEGORIES for k in range(DEPTS_PER_CATEGORY)]
    dept_id = np.array([dept_names[i % len(dept_names)] for i in range(n_items)])
    is_slow = np.zeros(n_items, dtype=bool)
    is_slow[rng.choice(n_items, size=round(config.slow_mover_share * n_items), replace=False)] = True
    fast_rate = np.maximum(rng.lognormal(np.log(FAST_MEDIAN_RATE), 0.6, n_items), FAST_MIN_RATE)
    return _Items(
        item_id=np.array([f"{dept}_{i + 1:03d}" for i, dept in enumerate(dept_id)]),
        dept_id=dept_id,
        cat_id=np.array([dept.rsplit("_", 1)[0] for dept in dept_id]),
        base_rate=np.where(is_slow, rng.uniform(*SLOW_RATE_RANGE, n_items), fast_rate),
        dispersion_shape=np.where(is_slow, SLOW_DISPERSION_SHAPE, FAST_DISPERSION_SHAPE),
        base_price=np.round(rng.lognormal(np.log(4.0), 0.7, n_items), 2).clip(min=0.5),
        elasticity=rng.uniform(-2.5, -1.0, n_items),
        weekly_amplitude=rng.uniform(0.6, 1.4, n_items),
        yearly_amplitude=rng.uniform(0.05, 0.3, n_items),
        yearly_phase_days=rng.uniform(0.0, DAYS_PER_YEAR, n_items),
        yearly_trend=rng.normal(0.0, 0.15, n_items),
        event_lift=rng.uniform(1.2, 1.8, n_items),
        promo_lift=rng.uniform(1.1, 1.5, n_items),
    )


def _draw_series(
    rng: np.random.Generator,
    config: SyntheticConfig,
    items: _Items,
    dates: pd.DatetimeIndex,
    is_event_day: np.ndarray,
) -> _Series:
    n_series = config.n_items * config.n_stores
    n_days = config.n_days
    item = np.repeat(np.arange(config.n_items), config.n_stores)
    store = np.tile(np.arange(config.n_stores), config.n_items)
    week = np.arange(n_days) // 7
    n_weeks = week[-1] + 1

    # Regular price: a per-item random walk that moves only on rare weeks, shared by all stores.
    moves = rng.random((config.n_items, n_weeks)) < PRICE_CHANGE_WEEKLY_PROBABILITY
    log_steps = np.where(moves, rng.normal(0.0, 0.07, (config.n_items, n_weeks)), 0.0)
    regular_price = np.round(items.base_price[:, None] * np.exp(np.cumsum(log_steps, axis=1)), 2)[item][:, week]
    # Promotions run for whole weeks per store, with a discount drawn per promo week.
    promo_weeks = rng.random((n_series, n_weeks)) < PROMO_WEEKLY_PROBABILITY
    discount = rng.uniform(*PROMO_DISCOUNT_RANGE, (n_series, n_weeks))
    promo = promo_weeks[:, week]
    price = np.round(regular_price * (1.0 - np.where(promo, discount[:, week], 0.0)), 2)

    store_factor = rng.uniform(0.6, 1.4, config.n_stores)[store]
    series_factor = rng.lognormal(0.0, 0.2, n_series)
    years_elapsed = np.arange(n_days) / DAYS_PER_YEAR
    day_of_year = dates.day_of_year.to_numpy()
    weekly = 1.0 + items.weekly_amplitude[item, None] * WEEKDAY_PROFILE[dates.day_of_week.to_numpy()]
    yearly = 1.0 + items.yearly_amplitude[item, None] * np.sin(
        2 * np.pi * (day_of_year - items.yearly_phase_days[item, None]) / DAYS_PER_YEAR
    )
    trend = np.exp(items.yearly_trend[item, None] * years_elapsed)
    event = np.where(is_event_day, items.event_lift[item, None], 1.0)
    price_response = (price / items.base_price[item, None]) ** items.elasticity[item, None]
    promo_response = np.where(promo, items.promo_lift[item, None], 1.0)
    mean_demand = (
        (items.base_rate[item] * store_factor * series_factor)[:, None]
        * weekly
        * yearly
        * trend
        * event
        * price_response
        * promo_response
    )

    shape = items.dispersion_shape[item, None]
    demand = rng.poisson(mean_demand * rng.gamma(shape, 1.0 / shape, (n_series, n_days)))

    # A stockout spell starting on day t covers t .. t+length-1; the running maximum of spell ends
    # marks every day still inside some spell, without a Python loop.
    day = np.arange(n_days)
    starts = rng.random((n_series, n_days)) < STOCKOUT_DAILY_START_PROBABILITY
    lengths = rng.integers(STOCKOUT_DAYS_RANGE[0], STOCKOUT_DAYS_RANGE[1] + 1, (n_series, n_days))
    out_of_stock_until = np.maximum.accumulate(np.where(starts, day + lengths, 0), axis=1)
    available = day >= out_of_stock_until
    return _Series(
        item=item,
        store=store,
        mean_demand=mean_demand,
        units=np.where(available, demand, 0).astype(np.int64),
        price=price,
        promo=promo,
        available=available,
    )


@dataclass(frozen=True)
class _CompletePeriods:
    """The whole periods inside a run of consecutive days: each one's label, first day (an index into
    the days) and length in days."""

    labels: pd.DatetimeIndex
    first_days: np.ndarray
    lengths: np.ndarray


def _complete_periods(dates: pd.DatetimeIndex, frequency: Frequency) -> _CompletePeriods:
    ordinals = frequency.ordinals(dates)
    first_days = np.flatnonzero(np.diff(ordinals, prepend=ordinals[0] - 1))
    lengths = np.diff(first_days, append=len(dates))
    # Only the first and the last period can be cut short by the simulated span.
    if frequency.kind == "M":
        whole_length = dates[first_days].days_in_month.to_numpy()
    else:
        whole_length = np.full(len(first_days), round(frequency.days_per_period))
    complete = lengths == whole_length
    return _CompletePeriods(
        labels=frequency.dates(ordinals[first_days[complete]]),
        first_days=first_days[complete],
        lengths=lengths[complete],
    )


def _to_periods(
    series: _Series, dates: pd.DatetimeIndex, is_event_day: np.ndarray, frequency: Frequency
) -> tuple[_Series, pd.DatetimeIndex, np.ndarray, pd.Timestamp]:
    """The daily series summed to the whole periods of `frequency`, their dates and event flags, and the
    last day they cover.

    Periods carry pandas' labels: a week its last day (W-SUN: the Sunday it ends on), a month its first
    day (MS). A label is a name, not the day of the sales, so the last day the data covers, which open
    orders must arrive after, is the end of the last period: for a month not its label but its last day.
    A partial week or month at either end is dropped; its sum would read as a collapse in demand."""
    if frequency.kind == "D":
        return series, dates, is_event_day, dates[-1]
    periods = _complete_periods(dates, frequency)
    kept = slice(periods.first_days[0], periods.first_days[-1] + periods.lengths[-1])
    first_days = periods.first_days - periods.first_days[0]

    def summed(matrix: np.ndarray) -> np.ndarray:
        return np.add.reduceat(matrix[..., kept], first_days, axis=-1)

    def any_day(matrix: np.ndarray) -> np.ndarray:
        return np.logical_or.reduceat(matrix[..., kept], first_days, axis=-1)

    period_series = replace(
        series,
        mean_demand=summed(series.mean_demand),
        units=summed(series.units),
        # Rounded to cents, as the daily prices are.
        price=np.round(summed(series.price) / periods.lengths, 2),
        promo=any_day(series.promo),
        # A period counts as on sale when the item was on the shelf for at least half of its days.
        available=2 * summed(series.available.astype(np.int64)) >= periods.lengths,
    )
    return period_series, periods.labels, any_day(is_event_day), dates[kept.stop - 1]


def _sales_frame(
    series: _Series,
    items: _Items,
    store_ids: np.ndarray,
    dates: pd.DatetimeIndex,
    is_event_day: np.ndarray,
) -> pd.DataFrame:
    n_days = len(dates)
    item_per_row = np.repeat(series.item, n_days)
    return pd.DataFrame(
        {
            "item_id": items.item_id[item_per_row],
            "store_id": store_ids[np.repeat(series.store, n_days)],
            "date": np.tile(dates.to_numpy(dtype="datetime64[ns]"), len(series.item)),
            "units": series.units.ravel(),
            "price": series.price.ravel(),
            "promo": series.promo.ravel().astype(np.int8),
            "event": np.tile(is_event_day, len(series.item)).astype(np.int8),
            "available": series.available.ravel().astype(np.int8),
            "dept_id": items.dept_id[item_per_row],
            "cat_id": items.cat_id[item_per_row],
        }
    )


def _item_master(rng: np.random.Generator, items: _Items, order_weekday: int) -> pd.DataFrame:
    """One supplier per category, each taking orders weekly on `order_weekday` (the weekday after the
    last day of sales, so the first plan made on the data has orders due)."""
    n_items = len(items.item_id)
    case_pack = rng.choice(np.array([1, 6, 12]), n_items)
    return pd.DataFrame(
        {
            "item_id": items.item_id,
            "dept_id": items.dept_id,
            "cat_id": items.cat_id,
            "unit_cost": np.round(items.base_price * rng.uniform(0.45, 0.75, n_items), 2),
            "holding_cost_rate": np.round(rng.uniform(0.15, 0.35, n_items), 3),
            "lead_time_days": rng.integers(2, 15, n_items),
            "case_pack": case_pack,
            "moq": case_pack * rng.integers(0, 3, n_items),
            "unit_volume": np.round(rng.uniform(0.2, 3.0, n_items), 2),
            "supplier_id": np.char.add("SUP_", items.cat_id.astype(str)),
            "review_days": 7,
            "order_weekday": order_weekday,
        }
    )


def _recent_mean_demand(series: _Series) -> np.ndarray:
    return series.mean_demand[:, -RECENT_DEMAND_DAYS:].mean(axis=1)


def _inventory(rng: np.random.Generator, series: _Series, items: _Items, store_ids: np.ndarray) -> pd.DataFrame:
    days_of_cover = rng.uniform(5.0, 20.0, len(series.item))
    on_hand = np.rint(_recent_mean_demand(series) * days_of_cover).astype(np.int64)
    # A series that is out of stock on the snapshot day has nothing on the shelf.
    on_hand = np.where(series.available[:, -1], on_hand, 0)
    return pd.DataFrame(
        {"item_id": items.item_id[series.item], "store_id": store_ids[series.store], "on_hand": on_hand}
    )


def _open_orders(
    rng: np.random.Generator,
    series: _Series,
    items: _Items,
    store_ids: np.ndarray,
    item_master: pd.DataFrame,
    last_date: pd.Timestamp,
) -> pd.DataFrame:
    n_series = len(series.item)
    case_pack = item_master["case_pack"].to_numpy()[series.item]
    lead_time_days = item_master["lead_time_days"].to_numpy()[series.item]
    # Series out of stock at the snapshot always have a replenishment on its way.
    has_order = (rng.random(n_series) < OPEN_ORDER_PROBABILITY) | ~series.available[:, -1]
    wanted_units = _recent_mean_demand(series) * rng.uniform(7.0, 21.0, n_series)
    quantity = np.maximum(np.ceil(wanted_units / case_pack), 1).astype(np.int64) * case_pack
    days_until_arrival = rng.integers(1, lead_time_days + 1)
    return pd.DataFrame(
        {
            "item_id": items.item_id[series.item][has_order],
            "store_id": store_ids[series.store][has_order],
            "quantity": quantity[has_order],
            "arrival_date": (last_date + pd.to_timedelta(days_until_arrival[has_order], unit="D")).astype(
                "datetime64[ns]"
            ),
        }
    )


def _capacity(
    rng: np.random.Generator,
    store_ids: np.ndarray,
    inventory: pd.DataFrame,
    open_orders: pd.DataFrame,
    item_master: pd.DataFrame,
) -> pd.DataFrame:
    committed_units = pd.concat(
        [
            inventory[["store_id", "item_id", "on_hand"]].rename(columns={"on_hand": "units"}),
            open_orders[["store_id", "item_id", "quantity"]].rename(columns={"quantity": "units"}),
        ],
        ignore_index=True,
    )
    unit_volume = committed_units["item_id"].map(item_master.set_index("item_id")["unit_volume"])
    committed_volume = (committed_units["units"] * unit_volume).groupby(committed_units["store_id"]).sum()
    committed_per_store = pd.Series(store_ids).map(committed_volume).fillna(0.0).to_numpy()
    headroom = rng.uniform(*CAPACITY_HEADROOM_RANGE, len(store_ids))
    return pd.DataFrame(
        {"store_id": store_ids, "capacity_volume": np.ceil(np.maximum(committed_per_store * headroom, 1.0))}
    )


def generate_intermittent_monthly(
    n_series: int = 2000, n_months: int = 51, seed: int = 7, start: date = date(2022, 1, 1)
) -> pd.DataFrame:
    """Spare-parts-like monthly sales: item_id, store_id, date (month starts), units.

    Each part has demand in a month with its own probability (three months in four are zero on
    average), a demand month's size is 1 + a gamma-Poisson draw around the part's own mean, and a
    share of parts drift slowly: their demand probability grows or shrinks over the years. Each part
    is stocked in one of a few warehouses."""
    if n_series < 1 or n_months < 1:
        raise ValueError(f"n_series and n_months must be at least 1, got {n_series} and {n_months}")
    if start.day != 1:
        raise ValueError(f"start must be the first day of a month (monthly dates are month starts), got {start}")
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=n_months, freq="MS")
    years_elapsed = np.arange(n_months) / 12

    demand_probability = rng.beta(*PART_DEMAND_PROBABILITY_BETA, n_series)
    trending = rng.random(n_series) < PART_TRENDING_SHARE
    yearly_trend = np.where(trending, rng.normal(0.0, PART_YEARLY_TREND_SD, n_series), 0.0)
    monthly_probability = np.minimum(
        demand_probability[:, None] * np.exp(yearly_trend[:, None] * years_elapsed), PART_MAX_DEMAND_PROBABILITY
    )
    has_demand = rng.random((n_series, n_months)) < monthly_probability
    extra_units_mean = rng.lognormal(np.log(PART_MEDIAN_EXTRA_UNITS), 0.8, n_series)
    noise = rng.gamma(PART_SIZE_DISPERSION_SHAPE, 1.0 / PART_SIZE_DISPERSION_SHAPE, (n_series, n_months))
    size = 1 + rng.poisson(extra_units_mean[:, None] * noise)

    part = np.arange(n_series)
    return pd.DataFrame(
        {
            "item_id": np.repeat(np.char.add("PART_", np.char.zfill((part + 1).astype(str), 5)), n_months),
            "store_id": np.repeat(np.char.add("WH_", (part % WAREHOUSES + 1).astype(str)), n_months),
            "date": np.tile(dates.to_numpy(dtype="datetime64[ns]"), n_series),
            "units": np.where(has_demand, size, 0).astype(np.int64).ravel(),
        }
    )
