import time
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from replenish.data.synthetic import SyntheticConfig, generate_intermittent_monthly, generate_synthetic
from replenish.data.tables import SALES_COLUMNS, MasterDefaults, RawTables, complete_tables
from replenish.frequency import Frequency, infer_frequency

# A Wednesday to the Wednesday 17 weeks later: a partial week, and a partial month, at both ends.
PARTIAL_ENDS = SyntheticConfig(n_items=6, n_stores=2, n_days=120, start_date=date(2024, 1, 3))


@pytest.fixture(scope="module")
def raw() -> RawTables:
    return generate_synthetic(SyntheticConfig())


def test_same_seed_gives_identical_frames_and_other_seed_differs(raw: RawTables) -> None:
    again = generate_synthetic(SyntheticConfig())
    other = generate_synthetic(SyntheticConfig(seed=8))

    for table in ("sales", "items", "inventory", "open_orders", "capacity"):
        pd.testing.assert_frame_equal(getattr(raw, table), getattr(again, table))
    assert not raw.sales["units"].equals(other.sales["units"])
    assert other.sources["sales"] == "synthetic(seed=8)"


def test_shapes_and_columns(raw: RawTables) -> None:
    config = SyntheticConfig()
    sales = raw.sales

    assert len(sales) == config.n_items * config.n_stores * config.n_days
    assert set(SALES_COLUMNS + ["dept_id", "cat_id"]) <= set(sales.columns)
    assert sales["item_id"].nunique() == config.n_items and sales["store_id"].nunique() == config.n_stores
    assert sales["date"].min() == pd.Timestamp(config.start_date)
    assert sales["date"].nunique() == config.n_days
    assert len(raw.items) == config.n_items
    assert len(raw.inventory) == config.n_items * config.n_stores
    assert len(raw.capacity) == config.n_stores
    assert raw.sources == {
        table: "synthetic(seed=7)" for table in ("sales", "items", "inventory", "open_orders", "capacity")
    }


def test_units_are_non_negative_integers(raw: RawTables) -> None:
    assert raw.sales["units"].dtype == np.int64
    assert (raw.sales["units"] >= 0).all()
    assert raw.sales["units"].sum() > 0


def test_weekly_seasonality_is_visible(raw: RawTables) -> None:
    mean_by_weekday = raw.sales.groupby(raw.sales["date"].dt.day_of_week)["units"].mean()
    saturday, tuesday = 5, 1
    assert mean_by_weekday[saturday] > 1.2 * mean_by_weekday[tuesday]


def test_slow_movers_are_mostly_zeros(raw: RawTables) -> None:
    on_sale = raw.sales[raw.sales["available"] == 1]
    zero_share_by_item = on_sale.groupby("item_id")["units"].apply(lambda units: (units == 0).mean())
    n_slow = round(SyntheticConfig().slow_mover_share * SyntheticConfig().n_items)

    assert (zero_share_by_item > 0.5).sum() == n_slow
    assert (zero_share_by_item < 0.3).sum() == SyntheticConfig().n_items - n_slow


def test_stockouts_censor_sales(raw: RawTables) -> None:
    stocked_out = raw.sales[raw.sales["available"] == 0]
    assert len(stocked_out) > 0
    assert (stocked_out["units"] == 0).all()


def test_promotions_cut_price_and_lift_units(raw: RawTables) -> None:
    on_sale = raw.sales[raw.sales["available"] == 1]
    mean_units = on_sale.groupby("promo")["units"].mean()
    assert mean_units[1] > 1.2 * mean_units[0]
    # Promotions run whole weeks per series: compare with the same series' price the week before.
    sales = raw.sales.sort_values(["item_id", "store_id", "date"])
    previous_price = sales.groupby(["item_id", "store_id"])["price"].shift(7)
    promo_started = (sales["promo"] == 1) & (sales.groupby(["item_id", "store_id"])["promo"].shift(7) == 0)
    assert (sales.loc[promo_started, "price"] < previous_price[promo_started]).mean() > 0.8


def test_events_lift_units_and_regular_prices_change(raw: RawTables) -> None:
    assert 0 < raw.sales.loc[raw.sales["event"] == 1, "date"].nunique() <= 10
    mean_units = raw.sales[raw.sales["available"] == 1].groupby("event")["units"].mean()
    assert mean_units[1] > mean_units[0]
    regular = raw.sales[raw.sales["promo"] == 0]
    assert (regular.groupby("item_id")["price"].nunique() > 1).any()


def test_item_master_ranges(raw: RawTables) -> None:
    items = raw.items
    assert items["item_id"].is_unique
    assert items["lead_time_days"].between(2, 14).all()
    assert set(items["case_pack"]) <= {1, 6, 12}
    assert ((items["moq"] % items["case_pack"]) == 0).all()
    assert (items["unit_cost"] > 0).all() and (items["unit_volume"] > 0).all()
    assert items["holding_cost_rate"].between(0, 1).all()


def test_open_orders_arrive_after_the_last_sales_date(raw: RawTables) -> None:
    assert len(raw.open_orders) > 0
    assert (raw.open_orders["arrival_date"] > raw.sales["date"].max()).all()
    assert (raw.open_orders["quantity"] > 0).all()


def test_capacity_comfortably_exceeds_opening_volume(raw: RawTables) -> None:
    unit_volume = raw.items.set_index("item_id")["unit_volume"]
    on_hand_volume = (
        (raw.inventory["on_hand"] * raw.inventory["item_id"].map(unit_volume)).groupby(raw.inventory["store_id"]).sum()
    )
    ordered_volume = (
        (raw.open_orders["quantity"] * raw.open_orders["item_id"].map(unit_volume))
        .groupby(raw.open_orders["store_id"])
        .sum()
    )
    committed = on_hand_volume.add(ordered_volume, fill_value=0.0)
    capacity = raw.capacity.set_index("store_id")["capacity_volume"]

    assert (capacity >= 2.0 * committed.reindex(capacity.index)).all()


def test_completes_without_gaps(raw: RawTables) -> None:
    data = complete_tables(raw, MasterDefaults())
    assert data.snapshot_date == raw.sales["date"].max()
    assert data.items["sell_price"].notna().all()
    series_key = ["item_id", "store_id"]
    completed_on_hand = data.inventory.set_index(series_key)["on_hand"]
    assert completed_on_hand.sort_index().equals(raw.inventory.set_index(series_key)["on_hand"].sort_index())


def test_is_fast_at_scale() -> None:
    started = time.perf_counter()
    raw = generate_synthetic(SyntheticConfig(n_items=500, n_stores=2, n_days=730))
    elapsed = time.perf_counter() - started

    assert len(raw.sales) == 1000 * 730
    assert elapsed < 5.0


def test_rejects_impossible_configs() -> None:
    with pytest.raises(ValueError, match="n_days"):
        SyntheticConfig(n_days=0)
    with pytest.raises(ValueError, match="slow_mover_share"):
        SyntheticConfig(slow_mover_share=1.5)
    with pytest.raises(ValueError, match="frequency"):
        SyntheticConfig(frequency="W-SUN")
    with pytest.raises(ValueError, match="no whole week"):
        SyntheticConfig(n_days=8, start_date=date(2024, 1, 2), frequency="W")
    with pytest.raises(ValueError, match="no whole month"):
        SyntheticConfig(n_days=40, start_date=date(2024, 1, 2), frequency="M")


@pytest.mark.parametrize(("frequency", "alias"), [("W", "W-SUN"), ("M", "MS")])
def test_weekly_and_monthly_sales_sum_the_daily_sales_over_whole_periods(frequency: str, alias: str) -> None:
    daily = generate_synthetic(PARTIAL_ENDS)
    periodic = generate_synthetic(replace(PARTIAL_ENDS, frequency=frequency))
    period = Frequency(alias)
    sales = periodic.sales

    assert list(sales.columns) == list(daily.sales.columns)
    assert sales.dtypes.equals(daily.sales.dtypes)
    inferred = infer_frequency(sales["date"], sales["item_id"] + "|" + sales["store_id"])
    assert inferred.frequency == period and (inferred.series_frequency == alias).all()
    assert period.on_calendar(sales["date"]).all()

    # Exactly the periods all of whose days were simulated are kept: not the partial first and last.
    days = daily.sales.assign(period=period.dates(period.ordinals(daily.sales["date"])))
    days_simulated = days.groupby("period")["date"].nunique()
    days_in_period = 7 if frequency == "W" else days_simulated.index.days_in_month
    whole_periods = days_simulated.index[days_simulated == days_in_period]
    assert len(whole_periods) == len(days_simulated) - 2
    assert sorted(sales["date"].unique()) == list(whole_periods)

    expected = (
        days[days["period"].isin(sales["date"])]
        .groupby(["item_id", "store_id", "period"])
        .agg(
            units=("units", "sum"),
            price=("price", "mean"),
            promo=("promo", "max"),
            event=("event", "max"),
            available_share=("available", "mean"),
        )
    )
    actual = sales.set_index(["item_id", "store_id", "date"]).loc[expected.index]
    assert len(sales) == len(expected)
    np.testing.assert_array_equal(actual["units"], expected["units"])
    np.testing.assert_allclose(actual["price"], expected["price"], atol=0.005)
    np.testing.assert_array_equal(actual["promo"], expected["promo"])
    np.testing.assert_array_equal(actual["event"], expected["event"])
    np.testing.assert_array_equal(actual["available"], (expected["available_share"] >= 0.5).astype(np.int8))


@pytest.mark.parametrize(("frequency", "alias"), [("W", "W-SUN"), ("M", "MS")])
def test_weekly_and_monthly_open_orders_arrive_after_the_last_sales_period(frequency: str, alias: str) -> None:
    daily = generate_synthetic(PARTIAL_ENDS)
    periodic = generate_synthetic(replace(PARTIAL_ENDS, frequency=frequency))
    period = Frequency(alias)
    last_period = period.ordinals(pd.DatetimeIndex([periodic.sales["date"].max()]))[0]

    assert len(periodic.open_orders) > 0
    assert (period.ordinals(periodic.open_orders["arrival_date"]) > last_period).all()
    # The same draws as the daily set: only the arrival dates move, with the last day the sales cover.
    pd.testing.assert_frame_equal(periodic.inventory, daily.inventory)
    pd.testing.assert_frame_equal(
        periodic.open_orders.drop(columns="arrival_date"), daily.open_orders.drop(columns="arrival_date")
    )


def test_intermittent_monthly_is_mostly_zeros_on_month_starts() -> None:
    sales = generate_intermittent_monthly(n_series=200, n_months=51, seed=3)

    assert list(sales.columns) == ["item_id", "store_id", "date", "units"]
    assert len(sales) == 200 * 51
    assert sales.groupby(["item_id", "store_id"]).ngroups == 200
    assert sales["item_id"].iloc[0] == "PART_00001" and sales["store_id"].str.startswith("WH_").all()
    assert sales["date"].dtype == "datetime64[ns]" and sales["units"].dtype == np.int64
    assert sales["date"].dt.is_month_start.all() and sales["date"].nunique() == 51
    assert infer_frequency(sales["date"], sales["item_id"]).frequency == Frequency("MS")
    assert 0.65 <= (sales["units"] == 0).mean() <= 0.85
    assert (sales["units"] >= 0).all()
    # Parts differ: some are nearly always asked for, others seldom.
    demand_share = (sales["units"] > 0).groupby(sales["item_id"]).mean()
    assert demand_share.min() < 0.1 and demand_share.max() > 0.5
    pd.testing.assert_frame_equal(sales, generate_intermittent_monthly(n_series=200, n_months=51, seed=3))


def test_intermittent_monthly_refuses_a_start_inside_a_month() -> None:
    with pytest.raises(ValueError, match="first day of a month"):
        generate_intermittent_monthly(n_series=2, n_months=3, start=date(2024, 1, 15))
