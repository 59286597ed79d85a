"""The planning tasks: a champion's recorded contract is checked before the plan asks it for anything."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from models.forecast_contract import ForecastContractError, ForecasterContract
from replenish import tracking
from replenish.cli import _is_user_error
from replenish.frequency import DAILY
from replenish.settings import load_settings
from tasks.planning import forecast_planning_horizon


def test_planning_refuses_a_champion_whose_recorded_horizon_is_shorter_than_the_plan(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    registry = tracking.ModelRegistry.open(settings)
    client, name = registry.client, registry.name
    client.create_registered_model(name)
    tracker = tracking.start_run(settings, "plan", {})
    version = client.create_model_version(name, source=f"runs:/{tracker.run_id}/model", run_id=tracker.run_id)
    training = pd.DataFrame({"date": pd.to_datetime(["2024-01-01", "2024-03-31"])})
    recorded = ForecasterContract.of_model(14, DAILY, settings.forecast.quantiles, ["item_id"], training)
    registry.tag_version(version, recorded.as_tags())
    client.set_registered_model_alias(name, "champion", version.version)

    champion = registry.champion()
    assert champion is not None and ForecasterContract.from_tags(champion.tags) == recorded
    sales = pd.DataFrame({"item_id": "A", "store_id": "S1", "date": pd.to_datetime(["2024-03-31"]), "units": 1})
    with pytest.raises(ForecastContractError, match=f"champion version {version.version} .* forecasts 14 days"):
        forecast_planning_horizon.fn(settings.planning, registry, tracker, sales)
    assert _is_user_error(ForecastContractError("shorter horizon"))
