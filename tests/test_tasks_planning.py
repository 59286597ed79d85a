"""From forecast to planning problem, and atomic publishing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.data.tables import MasterDefaults, complete_tables
from replenish.settings import PlanningSettings
from tasks.planning import planning_problem, write_csv_atomically


def test_planning_problem_starts_the_day_after_the_snapshot_and_uses_the_demand_quantile() -> None:
    data = complete_tables(generate_synthetic(SyntheticConfig(n_items=2, n_stores=1, n_days=90)), MasterDefaults())
    dates = pd.date_range(data.snapshot_date + pd.Timedelta(days=1), periods=28, freq="D")
    keys = data.sales[["item_id", "store_id"]].drop_duplicates()
    forecast = keys.merge(pd.DataFrame({"date": dates}), how="cross").assign(
        **{"q0.5": 2.0, "q0.8": 3.0})
    problem = planning_problem(data, forecast, PlanningSettings(horizon_days=14, demand_quantile=0.8))
    assert problem.start_date == dates[0]
    assert problem.n_periods == 14
    assert sorted(problem.demand["period"].unique()) == list(range(14))
    assert (problem.demand["demand"] == 3.0).all()
    assert len(problem.demand) == len(keys) * 14


def test_atomic_write_replaces_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    write_csv_atomically(pd.DataFrame({"a": [1, 2]}), path)
    write_csv_atomically(pd.DataFrame({"a": [3]}), path)
    assert path.read_text() == "a\n3\n"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.csv"]


def test_failed_write_leaves_the_published_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    path.write_text("published\n")

    class Exploding(pd.DataFrame):
        def to_csv(self, *args: object, **kwargs: object) -> None:
            args[0].write("half a pla")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_csv_atomically(Exploding({"a": [1]}), path)
    assert path.read_text() == "published\n"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.csv"]
