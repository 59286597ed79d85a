import time

import numpy as np
import pandas as pd
import pytest

from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.data.tables import SALES_COLUMNS, MasterDefaults, RawTables, complete_tables


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
