"""Settings: defaults, source priority, path pinning, derived URIs, validation errors and override parsing."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from expectations.rules import ValidationRules
from replenish.settings import Settings, SettingsError, load_settings, parse_overrides
from tests.conftest import REPOSITORY


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Relative defaults resolve inside tmp_path, and no REPLENISH_* variable leaks in from the shell."""
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("REPLENISH_")]:
        monkeypatch.delenv(name)


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults ------------------------------------------------------------------------------------------


def test_defaults_load_without_a_file_and_without_touching_disk(tmp_path: Path) -> None:
    settings = load_settings()

    assert isinstance(settings, Settings)
    assert settings.work_dir == tmp_path / ".replenish"
    assert settings.output_dir == tmp_path / "output"
    assert settings.data.format == "synthetic"
    assert settings.data.path is None
    assert settings.forecast.quantiles == (0.025, 0.1, 0.5, 0.8, 0.9, 0.95, 0.975)
    assert settings.planning.demand_quantile in settings.forecast.quantiles
    assert settings.planning.horizon is None and settings.forecast.horizon is None
    assert settings.plan_path == tmp_path / "output" / "order_plan.csv"
    assert settings.prefect_home == tmp_path / ".replenish" / "prefect"
    # Loading settings is pure: folders are created by configure_environment, not here.
    assert not settings.work_dir.exists()
    assert not settings.output_dir.exists()
    assert list(tmp_path.iterdir()) == []


def test_default_mlflow_store_is_a_sqlite_file_inside_work_dir(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path / 'state'}"])

    tracking = settings.mlflow_tracking_uri
    assert tracking.startswith("sqlite:///")
    assert Path(tracking.removeprefix("sqlite:///")) == tmp_path / "state" / "mlflow.db"
    assert settings.mlflow_registry_uri == tracking


def test_default_artifact_location_is_a_file_uri_inside_work_dir(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path / 'state'}"])

    parsed = urlparse(settings.mlflow_artifact_location)
    assert parsed.scheme == "file"
    artifacts = Path(url2pathname(parsed.path))
    assert artifacts.is_absolute()
    assert artifacts.is_relative_to(tmp_path / "state")


def test_explicit_tracking_uris_win_and_registry_follows_tracking() -> None:
    settings = load_settings(overrides=["tracking.tracking_uri=http://mlflow:5000"])
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.mlflow_registry_uri == "http://mlflow:5000"

    settings = load_settings(
        overrides=[
            "tracking.tracking_uri=http://mlflow:5000",
            "tracking.registry_uri=postgresql://db/registry",
            "tracking.artifact_location=s3://bucket/artifacts",
        ]
    )
    assert settings.mlflow_registry_uri == "postgresql://db/registry"
    assert settings.mlflow_artifact_location == "s3://bucket/artifacts"


# --- paths ---------------------------------------------------------------------------------------------


def test_relative_work_and_output_dirs_become_absolute(tmp_path: Path) -> None:
    settings = load_settings(overrides=["work_dir=state", "output_dir=nested/out"])

    assert settings.work_dir.is_absolute()
    assert settings.output_dir.is_absolute()
    assert settings.work_dir == tmp_path / "state"
    assert settings.output_dir == tmp_path / "nested" / "out"


def test_paths_are_pinned_at_load_time_not_at_use_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(overrides=["work_dir=state"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    assert settings.work_dir == tmp_path / "state"
    assert str(tmp_path / "state") in settings.mlflow_tracking_uri


def test_home_directory_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    settings = load_settings(overrides=["work_dir=~/replenish-state"])

    assert settings.work_dir == tmp_path / "home" / "replenish-state"


def test_relative_paths_from_env_and_yaml_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLENISH_WORK_DIR", "env-state")
    config = write_yaml(tmp_path / "settings.yaml", "output_dir: yaml-out\n")

    settings = load_settings(config)

    assert settings.work_dir == tmp_path / "env-state"
    assert settings.output_dir.is_absolute()
    assert settings.output_dir.name == "yaml-out"


# --- sources and their priority --------------------------------------------------------------------------


def test_yaml_file_overrides_defaults(tmp_path: Path) -> None:
    config = write_yaml(
        tmp_path / "settings.yaml",
        """
forecast:
  lstm:
    max_epochs: 2
  quantiles: [0.25, 0.5, 0.75]
planning:
  horizon: 14
data:
  synthetic:
    n_items: 5
""",
    )

    settings = load_settings(config)

    assert settings.forecast.lstm.max_epochs == 2
    assert settings.forecast.quantiles == (0.25, 0.5, 0.75)
    assert settings.planning.horizon == 14
    assert settings.data.synthetic.n_items == 5
    # Untouched values in the same sections keep their defaults.
    assert settings.forecast.lstm.hidden_size == 32
    assert settings.data.synthetic.n_stores == 2


def test_environment_variables_are_nested_with_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLENISH_FORECAST__LSTM__MAX_EPOCHS", "3")
    monkeypatch.setenv("REPLENISH_DATA__SYNTHETIC__N_ITEMS", "4")
    monkeypatch.setenv("REPLENISH_FORECAST__QUANTILES", "[0.3, 0.5, 0.7]")
    monkeypatch.setenv("REPLENISH_TRACKING__EXPERIMENT_NAME", "nightly")

    settings = load_settings()

    assert settings.forecast.lstm.max_epochs == 3
    assert settings.data.synthetic.n_items == 4
    assert settings.forecast.quantiles == (0.3, 0.5, 0.7)
    assert settings.tracking.experiment_name == "nightly"


def test_priority_is_overrides_then_env_then_yaml_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_yaml(
        tmp_path / "settings.yaml",
        """
forecast:
  lstm:
    max_epochs: 2
    hidden_size: 11
    batch_size: 64
""",
    )
    monkeypatch.setenv("REPLENISH_FORECAST__LSTM__MAX_EPOCHS", "3")
    monkeypatch.setenv("REPLENISH_FORECAST__LSTM__HIDDEN_SIZE", "12")

    settings = load_settings(config, ["forecast.lstm.max_epochs=4"])

    assert settings.forecast.lstm.max_epochs == 4  # --set beats env and file
    assert settings.forecast.lstm.hidden_size == 12  # env beats file
    assert settings.forecast.lstm.batch_size == 64  # file beats default
    assert settings.forecast.lstm.num_layers == 1  # default
    # Sources merge per key, not per section: the override did not wipe the rest of `forecast.lstm`.
    assert settings.forecast.lstm.learning_rate == pytest.approx(3e-3)


def test_env_beats_yaml_and_override_beats_env_for_a_whole_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_yaml(tmp_path / "settings.yaml", "forecast:\n  quantiles: [0.1, 0.5]\n")
    monkeypatch.setenv("REPLENISH_FORECAST__QUANTILES", "[0.2, 0.5]")

    assert load_settings(config).forecast.quantiles == (0.2, 0.5)
    assert load_settings(config, ["forecast.quantiles=[0.4, 0.5]"]).forecast.quantiles == (0.4, 0.5)


def test_config_file_applies_only_to_the_call_that_names_it(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "settings.yaml", "forecast:\n  lstm:\n    max_epochs: 2\n")

    assert load_settings(config).forecast.lstm.max_epochs == 2
    assert load_settings().forecast.lstm.max_epochs == 8
    with pytest.raises(SettingsError):
        load_settings(config, ["forecast.lstm.max_epochs=0"])
    assert load_settings().forecast.lstm.max_epochs == 8


def test_valid_cross_field_combination_is_accepted() -> None:
    settings = load_settings(
        overrides=[
            "forecast.quantiles=[0.5, 0.9]",
            "planning.demand_quantile=0.9",
            "forecast.horizon=14",
            "planning.horizon=14",
        ]
    )

    assert settings.planning.demand_quantile == 0.9
    assert settings.planning.horizon == settings.forecast.horizon == 14


def test_m5_format_with_a_path_is_accepted(tmp_path: Path) -> None:
    settings = load_settings(overrides=["data.format=m5", f"data.path={tmp_path / 'm5'}"])

    assert settings.data.format == "m5"
    assert settings.data.path == tmp_path / "m5"


def test_shipped_server_settings_file_loads() -> None:
    """deploy/servers.yaml is what deploy/README.md tells users to pass with --config."""
    config = REPOSITORY / "deploy" / "servers.yaml"

    settings = load_settings(config)

    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.mlflow_registry_uri == "http://127.0.0.1:5000"
    assert settings.orchestration.prefect_api_url == "http://127.0.0.1:4200/api"
    assert settings.data.format == "synthetic"


# --- invalid values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["forecast.quantiles=[0.2, 0.8]"], ["forecast.quantiles", "must include 0.5"]),
        (["forecast.quantiles=[0.9, 0.5]"], ["forecast.quantiles", "increasing"]),
        (["forecast.quantiles=[0.5, 0.5, 0.9]"], ["forecast.quantiles", "distinct"]),
        (["forecast.quantiles=[0.0, 0.5]"], ["forecast.quantiles", "strictly between 0 and 1"]),
        (["planning.horizon=29", "forecast.horizon=28"], ["planning.horizon (29)", "forecast.horizon (28)"]),
        (["planning.horizon=28", "forecast.horizon=7"], ["planning.horizon (28)", "forecast.horizon (7)"]),
        (["planning.demand_quantile=0.3"], ["planning.demand_quantile 0.3", "forecast.quantiles"]),
        (["forecast.quantiles=[0.1, 0.5, 0.9]", "planning.demand_quantile=0.8"], ["planning.demand_quantile 0.8"]),
        (["bogus=1"], ["bogus", "Extra inputs are not permitted"]),
        (["forecast.max_epochs=3"], ["forecast.max_epochs", "Extra inputs are not permitted"]),
        (["data.synthetic.n_itemz=3"], ["data.synthetic.n_itemz", "Unexpected keyword argument"]),
        (["data.format=m5"], ["data.path is required", "'m5'"]),
        (["data.format=long"], ["data.path is required", "'long'"]),
        (["data.format=excel"], ["data.format"]),
        (["forecast.lstm.max_epochs=0"], ["forecast.lstm", "max_epochs = 0"]),
        (["forecast.lstm.max_epochs=many"], ["forecast.lstm.max_epochs"]),
        (["forecast.lstm.dropout=1.0"], ["forecast.lstm", "dropout = 1.0", "dropout in [0, 1)"]),
        (["forecast.lstm.epochs=3"], ["forecast.lstm.epochs", "Unexpected keyword argument"]),
        (["data.synthetic.n_days=30"], ["data.synthetic", "n_days = 30", "at least 60 days"]),
        (["data.master_defaults.case_pack=0"], ["data.master_defaults", "case_pack = 0"]),
        (["data.master_defaults.order_weekday=7"], ["data.master_defaults", "order_weekday = 7"]),
        (["planning.service_levels.c=1.0"], ["planning.service_levels", "strictly between 0.5 and 1"]),
        (["data.validation.recent_periods=0"], ["data.validation", "recent_periods = 0"]),
        (["data.frequency=Q"], ["data.frequency", "not one of D, W-MON"]),
        (["data.validation.zero_share_jump=1.5"], ["data.validation", "zero_share_jump = 1.5"]),
        (["data.validation.max_gap=3"], ["data.validation.max_gap", "Unexpected keyword argument"]),
    ],
)
def test_invalid_override_raises_settings_error_naming_the_field(overrides: list[str], expected: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(overrides=overrides)

    message = str(caught.value)
    assert message.startswith("invalid settings")
    for text in expected:
        assert text in message
    assert isinstance(caught.value, ValueError)


def test_invalid_env_value_raises_settings_error_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLENISH_PLANNING__HORIZON", "-1")

    with pytest.raises(SettingsError, match=r"planning settings out of range: horizon = -1"):
        load_settings()


def test_unknown_nested_env_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLENISH_FORECAST__EPOCHS", "3")

    with pytest.raises(SettingsError, match=r"forecast\.epochs"):
        load_settings()


def test_invalid_yaml_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "bad.yaml", "forecast:\n  quantiles: [0.1, 0.9]\n")

    with pytest.raises(SettingsError) as caught:
        load_settings(config)

    message = str(caught.value)
    assert str(config) in message
    assert "forecast.quantiles" in message


def test_unknown_key_in_yaml_file_is_rejected(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "typo.yaml", "planing:\n  horizon_days: 7\n")

    with pytest.raises(SettingsError, match="planing"):
        load_settings(config)


def test_missing_yaml_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "settings.yaml"

    with pytest.raises(SettingsError) as caught:
        load_settings(missing)

    assert str(missing) in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_a_folder_is_not_a_settings_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path)


# --- parse_overrides -----------------------------------------------------------------------------------


def test_parse_overrides_reads_lists_as_yaml_and_keeps_scalars_as_text() -> None:
    parsed = parse_overrides(
        [
            "forecast.lstm.max_epochs=3",
            "forecast.quantiles=[0.1, 0.5, 0.9]",
            "data.format=m5",
            "tracking.experiment_name=nightly run",
            "data.synthetic.seed=-4",
        ]
    )

    assert parsed == {
        "forecast": {"lstm": {"max_epochs": "3"}, "quantiles": [0.1, 0.5, 0.9]},
        "data": {"format": "m5", "synthetic": {"seed": "-4"}},
        "tracking": {"experiment_name": "nightly run"},
    }
    assert all(type(q) is float for q in parsed["forecast"]["quantiles"])


def test_text_overrides_are_typed_by_the_settings_fields() -> None:
    settings = load_settings(
        overrides=[
            "forecast.lstm.max_epochs=3",
            "forecast.lstm.learning_rate=0.01",
            "data.synthetic.seed=-4",
            "forecast.lstm.trainer.devices=2",
        ]
    )

    assert settings.forecast.lstm.max_epochs == 3 and type(settings.forecast.lstm.max_epochs) is int
    assert settings.forecast.lstm.learning_rate == 0.01
    assert settings.data.synthetic.seed == -4
    # Trainer options have no declared type: their text is read as YAML, over the CPU defaults.
    assert settings.forecast.lstm.trainer_options == {"accelerator": "cpu", "devices": 2, "strategy": "auto"}


def test_parse_overrides_edge_values() -> None:
    parsed = parse_overrides(
        [
            "a=",  # empty value means "unset"
            "b=x=y",  # only the first '=' separates key and value
            "  c.d =7",  # whitespace around the key is ignored
            "f=true",  # scalars stay text; the settings field types them
        ]
    )

    assert parsed == {"a": None, "b": "x=y", "c": {"d": "7"}, "f": "true"}


def test_parse_overrides_later_value_for_the_same_key_wins() -> None:
    assert parse_overrides(["forecast.lstm.max_epochs=3", "forecast.lstm.max_epochs=5"]) == {
        "forecast": {"lstm": {"max_epochs": "5"}}
    }
    assert (
        load_settings(overrides=["forecast.lstm.max_epochs=3", "forecast.lstm.max_epochs=5"]).forecast.lstm.max_epochs
        == 5
    )


def test_parse_overrides_of_nothing_is_empty() -> None:
    assert parse_overrides([]) == {}


@pytest.mark.parametrize("pair", ["forecast.lstm.max_epochs", "=3", "   =3", ""])
def test_malformed_override_is_rejected(pair: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_overrides([pair])

    assert repr(pair) in str(caught.value)
    assert "key=value" in str(caught.value)


def test_malformed_override_surfaces_through_load_settings() -> None:
    with pytest.raises(SettingsError, match="key=value"):
        load_settings(overrides=["forecast.lstm.max_epochs"])


# --- regressions: bugs found while writing these tests ------------------------------------------------


def test_start_date_override_is_accepted() -> None:
    settings = load_settings(overrides=["data.synthetic.start_date=2024-03-01"])

    assert settings.data.synthetic.start_date == date(2024, 3, 1)


def test_start_date_in_yaml_is_accepted(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "settings.yaml", "data:\n  synthetic:\n    start_date: 2024-03-01\n")

    assert load_settings(config).data.synthetic.start_date == date(2024, 3, 1)


def test_numeric_experiment_name_override_is_accepted() -> None:
    assert load_settings(overrides=["tracking.experiment_name=2024"]).tracking.experiment_name == "2024"


def test_start_date_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLENISH_DATA__SYNTHETIC__START_DATE", "2024-03-01")

    assert load_settings().data.synthetic.start_date == date(2024, 3, 1)


def test_the_validation_section_is_the_data_contracts_own_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLENISH_DATA__VALIDATION__MAX_GAP_PERIODS", "21")
    rules = load_settings(overrides=["data.validation.quarantine=true"]).data.validation

    assert rules == ValidationRules(max_gap_periods=21, quarantine=True)


def test_auto_ets_is_left_out_above_its_series_limit_and_the_other_baselines_stay() -> None:
    forecast = load_settings(overrides=["forecast.auto_ets_max_series=500"]).forecast
    assert forecast.baselines_for(500) == ("seasonal_naive", "auto_ets", "tsb", "lightgbm")
    assert forecast.baselines_for(501) == ("seasonal_naive", "tsb", "lightgbm")
    always = load_settings(overrides=["forecast.auto_ets_max_series=null"]).forecast
    assert "auto_ets" in always.baselines_for(10**6)
