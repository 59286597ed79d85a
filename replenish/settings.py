"""One typed settings object for the whole project.

Values come, highest priority first, from ``--set key=value`` overrides, ``REPLENISH_*`` environment
variables (nested with ``__``, e.g. ``REPLENISH_FORECAST__LSTM__MAX_EPOCHS=3``), a YAML file, and the
defaults below, which run on a laptop with no server.
"""

from __future__ import annotations

import warnings
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from expectations.rules import ValidationRules
from models.ensemble.config import EnsembleConfig
from models.lstm.config import LSTMConfig
from models.monitoring_config import MonitoringThresholds
from optimization.config import PlanningConfig
from replenish.addresses import DEFAULT_MLFLOW_UI_URL
from replenish.data.synthetic import SyntheticConfig
from replenish.data.tables import MasterDefaults
from replenish.frequency import Frequency
from replenish.publishing import PLAN_FILE

_config_file: ContextVar[Path | None] = ContextVar("replenish_config_file", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


MIN_SYNTHETIC_DAYS = 60


class DataSettings(_Section):
    format: Literal["synthetic", "long", "m5"] = "synthetic"
    path: Path | None = None
    # The sales' time step: D, W (weeks ending Sunday) or W-MON … W-SUN, M (months dated their first
    # day), MS or ME. None: inferred from the dates, and the run says what it inferred.
    frequency: str | None = None
    synthetic: SyntheticConfig = SyntheticConfig()  # the generator's own (replenish/data/synthetic.py)
    # What a source's item master, inventory or capacity lacks (M5, plain sales files).
    master_defaults: MasterDefaults = MasterDefaults()
    validation: ValidationRules = ValidationRules()  # the data contract's knobs (expectations/)
    # A date absent inside a series (a gap validation allows) becomes a censored row marked "closed"
    # (the store was shut: a public holiday most exports omit) or "missing" (its sales were lost).
    absent_dates: Literal["closed", "missing"] = "closed"

    @field_validator("synthetic")
    @classmethod
    def _enough_days_to_train(cls, synthetic: SyntheticConfig) -> SyntheticConfig:
        # The generator makes any length; a run holds out a horizon and trains on the windows before it.
        if synthetic.n_days < MIN_SYNTHETIC_DAYS:
            raise ValueError(f"n_days = {synthetic.n_days}: a run needs at least {MIN_SYNTHETIC_DAYS} days of history")
        return synthetic

    @field_validator("frequency")
    @classmethod
    def _known_frequency(cls, frequency: str | None) -> str | None:
        return None if frequency is None else Frequency.parse(frequency).alias

    @property
    def declared_frequency(self) -> Frequency | None:
        return None if self.frequency is None else Frequency(self.frequency)

    @model_validator(mode="after")
    def _path_given_for_files(self) -> DataSettings:
        if self.format != "synthetic" and self.path is None:
            raise ValueError(f"data.path is required when data.format is {self.format!r}")
        return self


BaselineName = Literal["seasonal_naive", "auto_ets", "croston", "tsb", "lightgbm"]


def options_text_read_as_yaml(section: Any, name: str) -> Any:
    """A section's free mapping of options (a library's, passed through) with its text values read as
    YAML.  Overrides and environment variables arrive as text, which a declared field's type converts;
    these options have none, so "2" would reach the library as a string."""
    if isinstance(section, dict) and isinstance(section.get(name), dict):
        options = {
            key: yaml.safe_load(value) if isinstance(value, str) else value for key, value in section[name].items()
        }
        return {**section, name: options}
    return section


def _day_key_renamed(section: Any, old: str, new: str, where: str) -> Any:
    """The day-based key ``old`` still works (for daily data, where a period is a day), renamed to ``new``."""
    if isinstance(section, dict) and old in section:
        warnings.warn(
            f"{where}.{old} is deprecated: use {where}.{new}, counted in the data's periods (days for daily data)",
            DeprecationWarning,
            stacklevel=2,
        )
        section = {new: section[old], **{key: value for key, value in section.items() if key != old}}
    return section


class ForecastSettings(_Section):
    # Periods forecast (days, weeks or months, as the data). None: 28 days, 13 weeks or 6 months.
    horizon: int | None = Field(None, ge=1)
    # 0.025 / 0.975 and 0.1 / 0.9 bound the 95% and 80% intervals the backtest scores.
    quantiles: tuple[float, ...] = (0.025, 0.1, 0.5, 0.8, 0.9, 0.95, 0.975)
    seed: int = 42  # the LSTM's (ensemble member i: seed + i) and the seeded baselines'
    lstm: LSTMConfig = LSTMConfig()  # the network and its training (models/lstm/config.py)
    resume_training: bool = True  # an interrupted fit of the same data and settings goes on from its last checkpoint
    # Rolling-origin backtest: every model refitted at each origin, h days apart, the last one the holdout.
    backtest_origins: int = Field(3, ge=1)
    baselines: tuple[BaselineName, ...] = ("seasonal_naive", "auto_ets", "tsb", "lightgbm")
    # AutoETS fits every series on its own, about 0.2 CPU-seconds a series and origin on daily data; above
    # this many series the training flow leaves it out (of the backtest, so of the ensemble too). The
    # other baselines cost little per series, or are one global model. None: always, whatever it costs.
    auto_ets_max_series: int | None = Field(1000, ge=1)
    # The combination of the LSTM and baselines, learned on the origins before the holdout; registered
    # instead of the LSTM when it forecasts the holdout better.
    ensemble: EnsembleConfig = EnsembleConfig()

    @model_validator(mode="before")
    @classmethod
    def _horizon_days_renamed(cls, values: Any) -> Any:
        return _day_key_renamed(values, "horizon_days", "horizon", "forecast")

    def horizon_in(self, frequency: Frequency) -> int:
        """The forecast horizon in the data's periods."""
        return self.horizon or frequency.default_horizon

    def baselines_for(self, n_series: int) -> tuple[BaselineName, ...]:
        """The baselines worth their cost at ``n_series`` series (see ``auto_ets_max_series``)."""
        too_many = self.auto_ets_max_series is not None and n_series > self.auto_ets_max_series
        return tuple(name for name in self.baselines if not (name == "auto_ets" and too_many))

    @field_validator("lstm", mode="before")
    @classmethod
    def _trainer_text_read_as_yaml(cls, lstm: Any) -> Any:
        # Overrides and environment variables arrive as text, which a declared field's type converts;
        # the Trainer's options have none, so "2" would reach Lightning as a string.
        if isinstance(lstm, dict) and isinstance(lstm.get("trainer"), dict):
            trainer = {
                key: yaml.safe_load(value) if isinstance(value, str) else value
                for key, value in lstm["trainer"].items()
            }
            return {**lstm, "trainer": trainer}
        return lstm

    @field_validator("baselines")
    @classmethod
    def _seasonal_naive_always_scored(cls, baselines: tuple[str, ...]) -> tuple[str, ...]:
        # Monitoring and promotion thresholds are stated relative to seasonal naive.
        return ("seasonal_naive", *(name for name in dict.fromkeys(baselines) if name != "seasonal_naive"))

    @field_validator("quantiles")
    @classmethod
    def _quantiles_sorted_and_include_median(cls, quantiles: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < q < 1 for q in quantiles) or list(quantiles) != sorted(set(quantiles)):
            raise ValueError("quantiles must be distinct, increasing and strictly between 0 and 1")
        if 0.5 not in quantiles:
            raise ValueError("quantiles must include 0.5, the point forecast")
        return quantiles


class SimulateSettings(_Section):
    """The policy simulation (`replenish simulate`): the plan's policy replayed on recent history."""

    weeks: int = Field(8, ge=1)  # the last weeks of history replayed; the forecaster learns from the days before
    # Stores (the first by id) the repair's cost gap to the MILP is measured on: a MILP on every
    # store and order day would take hours.
    milp_gap_stores: int = Field(1, ge=1)
    on_train: bool = False  # the training flow runs the simulation after registering (it costs a replay per policy)


class TrackingSettings(_Section):
    tracking_uri: str | None = None  # default: SQLite file inside work_dir
    registry_uri: str | None = None  # default: same as tracking_uri
    artifact_location: str | None = None  # default: folder inside work_dir (new experiments only)
    experiment_name: str = "replenish"
    registered_model_name: str = "replenish-demand-lstm"
    # Where Prefect's artifacts link runs to: default the tracking server's own address, else the UI that
    # `replenish ui` serves on the embedded store.
    ui_url: str | None = None


class OrchestrationSettings(_Section):
    prefect_api_url: str | None = None  # default: Prefect's local mode, its database inside work_dir
    # With a server, monitoring starts retraining through this deployment; without one, as a subflow.
    training_deployment: str = "replenish-train/train-on-demand"
    # Runs the per-store work (planning per location): "sequential" in the flow's own thread, or
    # "dask", on a local Dask cluster of max_workers processes or the scheduler at dask_address.
    task_runner: Literal["sequential", "dask"] = "sequential"
    max_workers: int = Field(2, ge=1)
    dask_address: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REPLENISH_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    work_dir: Path = Path(".replenish")
    output_dir: Path = Path("output")
    data: DataSettings = DataSettings()
    forecast: ForecastSettings = ForecastSettings()
    planning: PlanningConfig = PlanningConfig()  # the plan (optimization/config.py)
    simulate: SimulateSettings = SimulateSettings()
    tracking: TrackingSettings = TrackingSettings()
    orchestration: OrchestrationSettings = OrchestrationSettings()
    monitoring: MonitoringThresholds = MonitoringThresholds()  # when to retrain (models/monitoring_config.py)

    @field_validator("planning", mode="before")
    @classmethod
    def _planning_keys_read(cls, planning: Any) -> Any:
        planning = _day_key_renamed(planning, "horizon_days", "horizon", "planning")
        if isinstance(planning, dict) and "solver" in planning:
            planning = {**planning, "solver": options_text_read_as_yaml(planning["solver"], "options")}
        return planning

    @field_validator("work_dir", "output_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        # Relative paths are pinned at load time so a later chdir (Lightning, Prefect workers) cannot move them.
        return path.expanduser().resolve()

    @model_validator(mode="after")
    def _planning_fits_forecast(self) -> Settings:
        planned, forecast = self.planning.horizon, self.forecast.horizon
        if planned is not None and forecast is not None and planned > forecast:
            raise ValueError(
                f"planning.horizon ({planned}) exceeds forecast.horizon ({forecast}): the plan needs a "
                "forecast for every period it covers"
            )
        if self.planning.demand_quantile not in self.forecast.quantiles:
            raise ValueError(
                f"planning.demand_quantile {self.planning.demand_quantile} is not one of forecast.quantiles "
                f"{list(self.forecast.quantiles)}"
            )
        return self

    def planned_horizon(self, frequency: Frequency) -> int:
        """The periods planned for data of ``frequency``, within the forecast's horizon."""
        planned, forecast_horizon = self.planning.horizon, self.forecast.horizon_in(frequency)
        if planned is not None and planned > forecast_horizon:
            raise ValueError(
                f"planning.horizon ({planned}) exceeds the forecast's horizon of {forecast_horizon} "
                f"{frequency.name}s: the plan needs a forecast for every period it covers"
            )
        return planned or forecast_horizon

    def for_frequency(self, frequency: Frequency) -> Settings:
        """These settings for data of ``frequency``: its alias as data.frequency, and the forecast and
        planning horizons in its periods (their defaults depend on it)."""
        return self.model_copy(
            update={
                "data": self.data.model_copy(update={"frequency": frequency.alias}),
                "forecast": self.forecast.model_copy(update={"horizon": self.forecast.horizon_in(frequency)}),
                "planning": replace(self.planning, horizon=self.planned_horizon(frequency)),
            }
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get()
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.tracking.tracking_uri or f"sqlite:///{self.work_dir / 'mlflow.db'}"

    @property
    def mlflow_registry_uri(self) -> str:
        return self.tracking.registry_uri or self.mlflow_tracking_uri

    @property
    def mlflow_ui_url(self) -> str:
        if self.tracking.ui_url:
            return self.tracking.ui_url.rstrip("/")
        tracking = self.mlflow_tracking_uri
        return tracking.rstrip("/") if tracking.startswith(("http://", "https://")) else DEFAULT_MLFLOW_UI_URL

    @property
    def mlflow_artifact_location(self) -> str | None:
        """A folder inside work_dir for the embedded store; a tracking server picks its own by default."""
        if self.tracking.artifact_location or self.tracking.tracking_uri:
            return self.tracking.artifact_location
        return (self.work_dir / "mlartifacts").as_uri()

    @property
    def prefect_home(self) -> Path:
        return self.work_dir / "prefect"

    @property
    def plan_path(self) -> Path:
        return self.output_dir / PLAN_FILE


class SettingsError(ValueError):
    """A settings file, environment variable or override that cannot be used."""


def _override_value(raw_value: str) -> Any:
    """Lists, mappings and null are read as YAML; anything else stays text for pydantic to coerce,
    so "2024-03-01" stays a date string and "2024" can still name an experiment."""
    stripped = raw_value.strip()
    if not stripped or stripped in {"null", "~"}:
        return None
    if stripped[0] in "[{":
        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError as error:
            raise SettingsError(f"override value {raw_value!r} is not valid YAML: {error}") from None
    return raw_value


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["forecast.lstm.max_epochs=3", "data.format=m5"]`` into a nested dict of YAML-typed values."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw_value = pair.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"override {pair!r} is not of the form key=value")
        *parents, leaf = key.strip().split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _override_value(raw_value)
    return nested


def load_settings(config_file: Path | None = None, overrides: list[str] | None = None) -> Settings:
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"settings file {config_file} does not exist")
    token = _config_file.set(config_file)
    try:
        return Settings(**parse_overrides(overrides or []))
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        source = f" (file {config_file})" if config_file else ""
        raise SettingsError(f"invalid settings{source}:\n{error}") from None
    finally:
        _config_file.reset(token)
