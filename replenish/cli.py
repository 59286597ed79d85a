"""The ``replenish`` command line."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer

if TYPE_CHECKING:
    from flows.planning import PlanningSummary
    from flows.training import TrainingSummary
    from replenish.settings import Settings

app = typer.Typer(
    name="replenish",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML settings file.", exists=False)]
SetOption = Annotated[
    Optional[list[str]], typer.Option("--set", "-s", help="Override one setting, e.g. --set forecast.max_epochs=3.")
]
DataOption = Annotated[Optional[Path], typer.Option("--data", help="Sales data: a long CSV/Parquet file or folder, or an M5 folder.")]
FormatOption = Annotated[Optional[str], typer.Option("--format", help="long | m5 | synthetic (default: synthetic).")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]


@app.callback()
def replenish() -> None:
    """Replenish: sales history in, validated data, a probabilistic demand forecast and an optimal order plan out.

    Example: replenish run --data sales.csv --set forecast.max_epochs=20
    """


def _overrides(set_values: list[str] | None, data: Path | None, data_format: str | None) -> list[str]:
    overrides = list(set_values or [])
    if data is not None:
        overrides.append(f"data.path={data.resolve()}")
        overrides.append(f"data.format={data_format or 'long'}")
    elif data_format is not None:
        overrides.append(f"data.format={data_format}")
    return overrides


def _user_error_types() -> tuple[type[BaseException], ...]:
    from expectations.validation import DataValidationError
    from optimization.replenishment_lp import PlanInfeasibleError
    from replenish.data.tables import DataFileError
    from replenish.settings import SettingsError
    from tasks.planning import ChampionMissingError

    return (SettingsError, DataValidationError, DataFileError, FileNotFoundError, PlanInfeasibleError,
            ChampionMissingError)


class _HideUserErrorTracebacks(logging.Filter):
    """Keep Prefect's console quiet about errors the CLI reports itself; its API log keeps the details."""

    def __init__(self, user_errors: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.user_errors = user_errors

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], self.user_errors))


def _quiet_console(user_errors: tuple[type[BaseException], ...]) -> None:
    """Call after the flows are imported: importing them sets Prefect's logging up afresh."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(_HideUserErrorTracebacks(user_errors))


def _fail(error: BaseException, debug: bool) -> NoReturn:
    if debug:
        raise error
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _run_flow(module: str, flow_name: str, config: Path | None, overrides: list[str], data: Path | None,
              debug: bool) -> tuple[Settings, Any]:
    """Check the cheap things, set up the environment before Prefect is imported, then run one flow.
    User errors end the command with one clear message."""
    if data is not None and not data.exists():
        _fail(FileNotFoundError(f"data path {data} does not exist"), debug)
    settings = _configured_settings(config, overrides, debug)
    user_errors = _user_error_types()
    try:
        flow = getattr(importlib.import_module(module), flow_name)
        if not debug:
            _quiet_console(user_errors)
        return settings, flow(config_file=str(config) if config else None, overrides=overrides)
    except user_errors as error:
        _fail(error, debug)


def _configured_settings(config: Path | None, overrides: list[str], debug: bool) -> Settings:
    """Settings loaded and the process environment set, before anything imports Prefect: Prefect reads
    its API URL and home folder once, at import."""
    from replenish.runtime import configure_environment
    from replenish.settings import SettingsError, load_settings

    try:
        settings = load_settings(config, overrides)
    except SettingsError as error:
        _fail(error, debug)
    configure_environment(settings)
    return settings


def _ui_line(settings: Settings) -> str:
    return f"  open UI    mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}"


@app.command()
def run(
    config: ConfigOption = None,
    set_values: SetOption = None,
    data: DataOption = None,
    data_format: FormatOption = None,
    debug: DebugOption = False,
) -> None:
    """Run the whole job once: train (and promote a better model), then plan with the champion.

    Example: replenish run --set forecast.max_epochs=3
    """
    settings, summary = _run_flow("flows.main", "main_flow", config, _overrides(set_values, data, data_format),
                                  data, debug)
    typer.echo("\n".join(["", "Replenish run finished", *_training_lines(summary.training),
                           *_planning_lines(summary.planning), _ui_line(settings)]))


@app.command()
def train(
    config: ConfigOption = None,
    set_values: SetOption = None,
    data: DataOption = None,
    data_format: FormatOption = None,
    debug: DebugOption = False,
) -> None:
    """Validate, train, backtest against the baselines and register; promote to champion only if better.

    Example: replenish train --data sales.csv --set forecast.max_epochs=20
    """
    settings, summary = _run_flow("flows.training", "training_flow", config,
                                  _overrides(set_values, data, data_format), data, debug)
    typer.echo("\n".join(["", "Training finished", *_training_lines(summary), _ui_line(settings)]))


@app.command()
def plan(
    config: ConfigOption = None,
    set_values: SetOption = None,
    data: DataOption = None,
    data_format: FormatOption = None,
    debug: DebugOption = False,
) -> None:
    """Forecast with the registered champion and publish an order plan for the latest data.

    Example: replenish plan --data sales.csv --set planning.uncertainty_mode=quantile
    """
    settings, summary = _run_flow("flows.planning", "planning_flow", config,
                                  _overrides(set_values, data, data_format), data, debug)
    typer.echo("\n".join(["", "Planning finished", *_planning_lines(summary), _ui_line(settings)]))


def _training_lines(summary: TrainingSummary) -> list[str]:
    registration, metrics = summary.registration, summary.metrics
    models = [name[: -len("_rmsse")] for name in metrics if name.endswith("_rmsse") and not name.startswith("holdout_")]
    return [
        "  backtest   RMSSE " + ", ".join(f"{model} {metrics[f'{model}_rmsse']:.3f}" for model in models)
        + f" (LSTM MASE {metrics['lstm_mase']:.3f}, 80% coverage {metrics['lstm_coverage_80']:.2f})",
        f"  model      {registration.model_name} v{registration.version}"
        f" ({'promoted to champion' if registration.promoted else 'not promoted'}: {registration.reason})",
        f"  MLflow run {summary.mlflow_run_id} (training)",
    ]


def _planning_lines(summary: PlanningSummary) -> list[str]:
    plan = summary.plan
    return [
        f"  plan       {plan.orders} orders, {plan.units:,.0f} units, planned cost {plan.planned_cost:,.2f},"
        f" expected fill rate {plan.expected_fill_rate:.1%} (solver: {plan.solver_status})",
        f"  written    {plan.plan_path} (explained: {plan.explained_path.name})",
        f"  MLflow run {summary.mlflow_run_id} (planning)",
        f"  report     {summary.report_path}",
    ]


@app.command()
def monitor(
    config: ConfigOption = None,
    set_values: SetOption = None,
    data: DataOption = None,
    data_format: FormatOption = None,
    debug: DebugOption = False,
) -> None:
    """Score the champion's logged forecasts against the sales that arrived since; retrain when it degraded.

    Example: replenish monitor --data latest_sales.csv
    """
    settings, summary = _run_flow("flows.monitoring", "monitoring_flow", config,
                                  _overrides(set_values, data, data_format), data, debug)
    report = summary.report
    lines = ["", f"Monitoring finished: {'retrain' if report.decision.retrain else 'keep the champion'}",
             *[f"  reason     {reason}" for reason in report.decision.reasons]]
    lines += [f"  {name:<10} {value:.3f}" for name, value in {**report.performance, **report.drift}.items()]
    if summary.training is not None:
        lines += _training_lines(summary.training)
    if summary.training_flow_run_id is not None:
        lines.append(f"  retraining started as flow run {summary.training_flow_run_id}")
    lines += [f"  MLflow run {summary.mlflow_run_id} (monitoring)", _ui_line(settings)]
    typer.echo("\n".join(lines))


@app.command()
def serve(config: ConfigOption = None, set_values: SetOption = None, debug: DebugOption = False) -> None:
    """Serve the deployments here until stopped: daily planning, weekly monitoring, training on demand.

    With orchestration.prefect_api_url set, they register with that server; otherwise with the local
    Prefect database, where `replenish trigger` from another terminal finds them.

    Example: replenish serve --config deploy/servers.yaml
    """
    overrides = list(set_values or [])
    _configured_settings(config, overrides, debug)
    from prefect import serve as serve_deployments

    from flows.deployments import replenish_deployments

    serve_deployments(*replenish_deployments(str(config.resolve()) if config else None, overrides))


@app.command()
def trigger(
    flow: Annotated[str, typer.Argument(help="train | plan | monitor | main, or a full FLOW/DEPLOYMENT name.")],
    params: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="A flow parameter, key=value.")] = None,
    config: ConfigOption = None,
    set_values: SetOption = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the run to finish.")] = False,
    debug: DebugOption = False,
) -> None:
    """Start an ad-hoc run of a served deployment and print its flow-run id.

    Example: replenish trigger train --param 'overrides=["forecast.max_epochs=20"]'
    """
    from replenish.settings import SettingsError, parse_overrides

    _configured_settings(config, list(set_values or []), debug)
    try:
        parameters = parse_overrides(list(params or []))
    except SettingsError as error:
        _fail(error, debug)
    from prefect.deployments import run_deployment

    from flows.deployments import SHORT_NAMES

    flow_run = run_deployment(SHORT_NAMES.get(flow, flow), parameters=parameters, timeout=None if wait else 0)
    typer.echo(f"flow run {flow_run.id} ({flow_run.name}): {flow_run.state.name if flow_run.state else 'scheduled'}")
    if wait and flow_run.state is not None and not flow_run.state.is_completed():
        raise typer.Exit(code=1)


@app.command()
def validate(
    data: DataOption = None,
    data_format: FormatOption = None,
    config: ConfigOption = None,
    set_values: SetOption = None,
    debug: DebugOption = False,
) -> None:
    """Check input data against the data contract only: no training, no planning.

    Renders Great Expectations Data Docs and logs them to MLflow. Exits 1 when an error rule breaks.

    Example: replenish validate --data sales.csv
    """
    _, checked = _run_flow("flows.validation", "validation_flow", config,
                           _overrides(set_values, data, data_format), data, debug)
    report = checked.report
    lines = [f"validation passed: {report.expectations_checked} expectations on "
             + ", ".join(f"{table} ({rows} rows)" for table, rows in report.tables.items())]
    lines += [f"  warning: {warning.describe()}" for warning in report.warnings]
    lines += [f"  quarantined {len(rows)} row(s) of {table}" for table, rows in checked.quarantined.items()]
    if report.data_docs:
        lines.append(f"  Data Docs: {report.data_docs}")
    typer.echo("\n".join(lines))
