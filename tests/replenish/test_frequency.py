from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replenish.frequency import Frequency, infer_frequency


def long_rows(dates_by_series: dict[str, pd.DatetimeIndex]) -> tuple[pd.Series, pd.Series]:
    """The date and series columns of a long sales table holding these series."""
    dates = pd.Series(np.concatenate([index.to_numpy() for index in dates_by_series.values()]))
    series = pd.Series(np.repeat(list(dates_by_series), [len(index) for index in dates_by_series.values()]))
    return dates, series


def test_parse_expands_the_short_aliases_and_refuses_others() -> None:
    assert Frequency.parse("W") == Frequency("W-SUN")
    assert Frequency.parse(" m ") == Frequency("MS")
    assert Frequency.parse("w-fri") == Frequency("W-FRI")
    assert Frequency.parse("ME").kind == "M" and Frequency.parse("D").kind == "D"
    for alias in ("H", "W-FRIDAY", "Q", ""):
        with pytest.raises(ValueError, match="is not one of"):
            Frequency.parse(alias)


@pytest.mark.parametrize(
    ("alias", "dates"),
    [
        ("D", pd.date_range("2024-02-25", periods=10, freq="D")),
        ("W-FRI", pd.date_range("2024-01-05", periods=60, freq="W-FRI")),
        ("MS", pd.date_range("2023-11-01", periods=30, freq="MS")),
        ("ME", pd.date_range("2023-11-30", periods=30, freq="ME")),
    ],
)
def test_ordinals_and_dates_round_trip(alias: str, dates: pd.DatetimeIndex) -> None:
    frequency = Frequency(alias)
    ordinals = frequency.ordinals(dates)

    assert (np.diff(ordinals) == 1).all()
    pd.testing.assert_index_equal(frequency.dates(ordinals), pd.DatetimeIndex(dates, freq=None).as_unit("ns"))


def test_days_inside_a_period_share_its_ordinal() -> None:
    week = Frequency("W-SUN")
    monday_to_sunday = pd.date_range("2024-01-01", "2024-01-07", freq="D")
    assert len(set(week.ordinals(monday_to_sunday))) == 1
    assert week.dates(week.ordinals(monday_to_sunday[:1]))[0] == pd.Timestamp("2024-01-07")
    assert Frequency("MS").dates(Frequency("MS").ordinals(pd.DatetimeIndex(["2024-02-17"])))[0] == pd.Timestamp(
        "2024-02-01"
    )


def test_after_gives_the_following_period_dates() -> None:
    assert list(Frequency("D").after(pd.Timestamp("2024-02-28"), 2)) == [
        pd.Timestamp("2024-02-29"),
        pd.Timestamp("2024-03-01"),
    ]
    assert list(Frequency("W-SUN").after(pd.Timestamp("2024-01-07"), 2)) == [
        pd.Timestamp("2024-01-14"),
        pd.Timestamp("2024-01-21"),
    ]
    assert list(Frequency("MS").after(pd.Timestamp("2024-11-01"), 3)) == [
        pd.Timestamp("2024-12-01"),
        pd.Timestamp("2025-01-01"),
        pd.Timestamp("2025-02-01"),
    ]
    assert list(Frequency("ME").after(pd.Timestamp("2024-01-31"), 1)) == [pd.Timestamp("2024-02-29")]


def test_periods_in_days_rounds_up() -> None:
    week = Frequency("W-SUN")
    assert [week.periods_in_days(days) for days in (0, 1, 7, 8, 14, 15)] == [0, 1, 1, 2, 2, 3]
    assert list(week.periods_in_days_array(np.array([0, 7, 8]))) == [0, 1, 2]
    assert Frequency("D").periods_in_days(8) == 8
    assert [Frequency("MS").periods_in_days(days) for days in (0, 30, 31, 45)] == [0, 1, 2, 2]


def test_on_calendar_marks_the_dates_that_label_periods() -> None:
    dates = pd.Series(pd.to_datetime(["2024-01-05", "2024-01-07", "2024-02-01", "2024-02-29"]))

    assert Frequency("D").on_calendar(dates).all()
    assert list(Frequency("W-FRI").on_calendar(dates)) == [True, False, False, False]
    assert list(Frequency("W-SUN").on_calendar(dates)) == [False, True, False, False]
    assert list(Frequency("MS").on_calendar(dates)) == [False, False, True, False]
    assert list(Frequency("ME").on_calendar(dates)) == [False, False, False, True]


def test_infers_daily_even_with_days_missing() -> None:
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    dates, series = long_rows({"A": days.delete([3, 10, 11, 40]), "B": days[::2].append(days[-1:])})

    inferred = infer_frequency(dates, series)

    assert inferred.frequency == Frequency("D")
    assert (inferred.series_frequency == "D").all()


@pytest.mark.parametrize(
    ("alias", "dates"),
    [
        ("W-FRI", pd.date_range("2024-01-05", periods=20, freq="W-FRI")),
        ("MS", pd.date_range("2023-01-01", periods=14, freq="MS")),
        ("ME", pd.date_range("2023-01-31", periods=14, freq="ME")),
    ],
)
def test_infers_weekly_and_monthly(alias: str, dates: pd.DatetimeIndex) -> None:
    # The second series misses a period: its shortest step is still one period.
    dates_column, series = long_rows({"A": dates, "B": dates.delete(5)})

    inferred = infer_frequency(dates_column, series)

    assert inferred.frequency == Frequency(alias)
    assert (inferred.series_frequency == alias).all()


def test_a_mix_gives_the_majority_and_shows_the_odd_series() -> None:
    dates, series = long_rows(
        {
            # More rows than either weekly series, fewer than both: the majority is of rows.
            "daily": pd.date_range("2024-01-01", periods=60, freq="D"),
            "weekly_1": pd.date_range("2024-01-07", periods=40, freq="W-SUN"),
            "weekly_2": pd.date_range("2024-01-07", periods=40, freq="W-SUN"),
        }
    )

    inferred = infer_frequency(dates, series)

    assert inferred.frequency == Frequency("W-SUN")
    assert list(inferred.series_frequency.index) == list(series.index)
    assert (inferred.series_frequency[series == "daily"] == "D").all()
    assert (inferred.series_frequency[series != "daily"] == "W-SUN").all()


def test_nothing_to_infer_from_single_dates() -> None:
    dates, series = long_rows({"A": pd.DatetimeIndex(["2024-01-01"]), "B": pd.DatetimeIndex(["2024-01-03"])})

    inferred = infer_frequency(dates, series)

    assert inferred.frequency is None
    assert (inferred.series_frequency == "").all()
