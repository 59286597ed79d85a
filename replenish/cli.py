"""The ``replenish`` command line."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer

from replenish.addresses import MLFLOW_UI_HOST, MLFLOW_UI_PORT

if TYPE_CHECKING:
    from flows.main import MainRunSummary
    from flows.monitoring import MonitoringSummary
    from flows.planning import PlanningSummary
    from flows.simulation import SimulationSummary
    from flows.training import TrainingSummary
    from replenish.settings import Settings

app = typer.Typer(
    name="replenish",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML settings file.", exists=False)]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override one setting, e.g. --set forecast.lstm.max_epochs=3.")
]
DataOption = Annotated[
    Path | None, typer.Option("--data", help="Sales data: a long CSV/Parquet file or folder, or an M5 folder.")
]
FormatOption = Annotated[str | None, typer.Option("--format", help="long | m5 | synthetic (default: synthetic).")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Also show Prefect's task log and Lightning's and "
        "MLflow's notices; by default the console shows progress bars, warnings, "
        "errors and the summary.",
    ),
]


@app.callback()
def replenish() -> None:
    """Replenish: sales history in, validated data, a probabilistic demand forecast and an optimal order plan out.

    Example: replenish run --data sales.csv --set forecast.lstm.max_epochs=20
    """


def _overrides(set_values: list[str] | None, data: Path | None, data_format: str | None) -> list[str]:
    overrides = list(set_values or [])
    if data is not None:
        overrides.append(f"data.path={data.resolve()}")
        overrides.append(f"data.format={data_format or 'long'}")
    elif data_format is not None:
        overrides.append(f"data.format={data_format}")
    return overrides


# Errors that are the user's to fix, reported as one line: the class names, by the module defining them.
_USER_ERRORS = {
    "builtins": ("FileNotFoundError",),
    "replenish.settings": ("SettingsError",),
    "replenish.data.tables": ("DataFileError",),
    "replenish.publishing": ("PublishError",),
    "replenish.simulate": ("SimulationWindowError",),
    "expectations.validation": ("DataValidationError",),
    "models.forecast_contract": ("ForecastContractError",),
    "optimization.replenishment_lp": ("PlanInfeasibleError", "SolverLimitError"),
    "tasks.planning": ("ChampionMissingError",),
}


def _is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is one of _USER_ERRORS.  Looked up in the modules already imported: an error
    whose module was never imported cannot have been raised, and importing them all would cost a
    command like `validate` seconds (torch and Lightning come with tasks.planning)."""
    return any(
        isinstance(error, getattr(sys.modules[module], name))
        for module, names in _USER_ERRORS.items()
        if module in sys.modules
        for name in names
    )


class _HideUserErrorTracebacks(logging.Filter):
    """Keep Prefect's console quiet about errors the CLI reports itself; its API log keeps the details."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            return not _is_user_error(record.exc_info[1])
        # A task's "Finished in state Failed('... DataValidationError: ...')" line repeats the error as text.
        message = record.getMessage()
        return not any(f"exception {name}:" in message for names in _USER_ERRORS.values() for name in names)


def _quiet_console(debug: bool, verbose: bool) -> None:
    """Call after the flows are imported: importing them sets Prefect's logging up afresh.  Prefect's API
    handler keeps every record for the UI; the console gets warnings and errors only, unless verbose, and
    no traceback of an error the CLI reports itself, unless debugging."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            if not debug:
                handler.addFilter(_HideUserErrorTracebacks())
            if not verbose:
                handler.setLevel(logging.WARNING)
    if not debug:
        # Prefect's API log worker reports a failed send from its own thread, as "--- Error logging to API ---"
        # and the error without a line end, the moment a server stops answering (before the command can
        # notice); the command reports a lost server itself, in one line.  Only logging's own errors are hidden.
        logging.raiseExceptions = False
    if not verbose:
        # Lightning's device lines and MLflow's database and validation notes, on every run.
        for name in ("pytorch_lightning", "lightning_fabric", "mlflow"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # MLflow's bar for each model it reads back from the store (the champion, the holdout's check):
        # a fraction of a second each, and no news.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _fail(error: BaseException, debug: bool) -> NoReturn:
    if debug:
        raise error
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _run_flow(
    module: str,
    flow_name: str,
    config: Path | None,
    overrides: list[str],
    data: Path | None,
    debug: bool,
    verbose: bool,
) -> tuple[Settings, Any]:
    """Check the cheap things, set up the environment before Prefect is imported, then run one flow.
    User errors end the command with one clear message."""
    from replenish.orchestration import (
        ServerLostError,
        ServerUnavailableError,
        abandon_undelivered_prefect_events,
        prefect_api,
        process_tag,
        stop_when_a_server_is_lost,
        unreachable_server,
    )
    from replenish.runtime import StoreBusyError, exclusive_store

    if data is not None and not data.exists():
        _fail(FileNotFoundError(f"data path {data} does not exist"), debug)
    settings = _configured_settings(config, overrides, debug)
    try:
        # The flow's imports (Prefect, torch, MLflow, GX) run while the local Prefect server starts.
        with exclusive_store(settings), prefect_api(settings, meanwhile=lambda: importlib.import_module(module)):
            from prefect import tags

            from replenish.orchestration import crash_flow_runs_of_dead_processes

            flow = getattr(importlib.import_module(module), flow_name)
            _quiet_console(debug, verbose)
            crash_flow_runs_of_dead_processes()
            try:
                with stop_when_a_server_is_lost(settings), tags(process_tag()):
                    return settings, flow(config_file=str(config) if config else None, overrides=overrides)
            except (Exception, ServerLostError) as error:
                if _is_user_error(error):
                    _fail(error, debug)
                lost = str(error) if isinstance(error, ServerLostError) else unreachable_server(settings)
                if lost is None:
                    raise
                # Prefect's log and event workers flush at exit, to the server that is gone; their errors
                # would bury the one line that says what happened.
                logging.disable(logging.CRITICAL)
                # Prefect's internal loggers (prefect._internal.SafeLogger) override isEnabledFor and so
                # ignore logging.disable; a disabled logger drops its records in handle() all the same.
                for name, logger in list(logging.Logger.manager.loggerDict.items()):
                    if name.startswith("prefect") and isinstance(logger, logging.Logger):
                        logger.disabled = True
                abandon_undelivered_prefect_events()
                _fail(
                    ServerUnavailableError(
                        f"{lost} does not answer; nothing was published ({error.__class__.__name__})"
                    ),
                    debug,
                )
    except (StoreBusyError, ServerUnavailableError) as error:
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
    from replenish.redaction import redacted_url

    return f"  open UI    replenish ui  (MLflow UI on {redacted_url(settings.mlflow_tracking_uri)})"


def _flow_command(name: str, module: str, flow_name: str, lines: Callable[[Any], list[str]], help: str) -> None:
    """Register a command that runs one flow and prints its summary: the five share their options."""

    def command(
        config: ConfigOption = None,
        set_values: SetOption = None,
        data: DataOption = None,
        data_format: FormatOption = None,
        debug: DebugOption = False,
        verbose: VerboseOption = False,
    ) -> None:
        overrides = _overrides(set_values, data, data_format)
        settings, summary = _run_flow(module, flow_name, config, overrides, data, debug, verbose)
        typer.echo("\n".join(["", *lines(summary), _ui_line(settings)]))

    app.command(name, help=help)(command)


def _run_lines(summary: MainRunSummary) -> list[str]:
    return ["Replenish run finished", *_training_lines(summary.training), *_planning_lines(summary.planning)]


def _training_lines(summary: TrainingSummary) -> list[str]:
    registration, metrics = summary.registration, summary.metrics
    models = [name[: -len("_rmsse")] for name in metrics if name.endswith("_rmsse") and not name.startswith("holdout_")]
    return [
        "  backtest   RMSSE "
        + ", ".join(f"{model} {metrics[f'{model}_rmsse']:.3f}" for model in models)
        + f" (LSTM MASE {metrics['lstm_mase']:.3f}, 80% coverage {metrics['lstm_coverage_80']:.2f})",
        f"  model      {registration.model_name} v{registration.version}"
        f" ({'promoted to champion' if registration.promoted else 'not promoted'}: {registration.reason})",
        f"  MLflow run {summary.mlflow_run_id} (training)",
    ]


def _planning_lines(summary: PlanningSummary) -> list[str]:
    return [
        *summary.plan.summary_lines(),
        f"  MLflow run {summary.mlflow_run_id} (planning)",
        f"  report     {summary.report_path}",
    ]


def _simulation_lines(summary: SimulationSummary) -> list[str]:
    simulation = summary.simulation
    metrics = simulation.metrics
    lines = [
        "Simulation finished",
        f"  replay     {simulation.days} days from {simulation.start:%Y-%m-%d}, {simulation.item_stores:,} item-stores",
        f"  {'policy':<20} {'total cost':>14} {'fill rate':>10} {'turns':>8} {'refused orders':>15}",
    ]
    lines += [
        f"  {policy:<20} {row['total_cost']:>14,.2f} {row['fill_rate']:>10.1%} {row['turns']:>8.1f}"
        f" {row['case_pack_violations']:>15,.0f}"
        for policy, row in metrics.iterrows()
    ]
    lines += [
        f"  default    {simulation.cost_reduction():.1%} cheaper than base stock, "
        f"{simulation.gap_closed():.1%} of the gap to perfect foresight closed; repair vs MILP "
        f"{simulation.milp_gap:+.2%} (on {', '.join(simulation.milp_gap_stores)})",
        f"  MLflow run {summary.mlflow_run_id} (simulation in child run {summary.simulation_run_id})",
    ]
    return lines


def _monitoring_lines(summary: MonitoringSummary) -> list[str]:
    report = summary.report
    lines = [
        f"Monitoring finished: {'retrain' if report.decision.retrain else 'keep the champion'}",
        *[f"  reason     {reason}" for reason in report.decision.reasons],
    ]
    lines += [f"  {name:<10} {value:.3f}" for name, value in {**report.performance, **report.drift}.items()]
    if summary.training is not None:
        lines += _training_lines(summary.training)
    if summary.training_flow_run_id is not None:
        lines.append(f"  retraining started as flow run {summary.training_flow_run_id}")
    lines.append(f"  MLflow run {summary.mlflow_run_id} (monitoring)")
    return lines


_flow_command(
    "run",
    "flows.main",
    "main_flow",
    _run_lines,
    """Run the whole job once: train (and promote a better model), then plan with the champion.

    Example: replenish run --set forecast.lstm.max_epochs=3
    """,
)
_flow_command(
    "train",
    "flows.training",
    "training_flow",
    lambda summary: ["Training finished", *_training_lines(summary)],
    """Validate, train, backtest against the baselines and register; promote to champion only if better.

    Example: replenish train --data sales.csv --set forecast.lstm.max_epochs=20
    """,
)
_flow_command(
    "plan",
    "flows.planning",
    "planning_flow",
    lambda summary: ["Planning finished", *_planning_lines(summary)],
    """Forecast with the registered champion and publish an order plan for the latest data.

    Example: replenish plan --data sales.csv --set planning.uncertainty_mode=quantile
    """,
)
_flow_command(
    "simulate",
    "flows.simulation",
    "simulation_flow",
    _simulation_lines,
    """Replay the last simulate.weeks weeks of history under the planning policy, base stock and perfect foresight.

    The default policy is re-planned on every order day with the same code and settings as `replenish plan`;
    the comparison goes to an MLflow child run, a Prefect artifact and the next plan report.

    Example: replenish simulate --data sales.csv --set simulate.weeks=12
    """,
)
_flow_command(
    "monitor",
    "flows.monitoring",
    "monitoring_flow",
    _monitoring_lines,
    """Score the champion's logged forecasts against the sales that arrived since; retrain when it degraded.

    Example: replenish monitor --data latest_sales.csv
    """,
)


@app.command()
def serve(config: ConfigOption = None, set_values: SetOption = None, debug: DebugOption = False) -> None:
    """Serve the deployments here until stopped: daily planning, weekly monitoring, training on demand.

    With orchestration.prefect_api_url set, they register with that server; otherwise with the local
    Prefect database, where `replenish trigger` from another terminal finds them.

    Example: replenish serve --config deploy/servers.yaml
    """
    from replenish.orchestration import ServerUnavailableError, prefect_api

    overrides = list(set_values or [])
    settings = _configured_settings(config, overrides, debug)
    try:
        # The local server runs its scheduler here, so the schedules fire while serve runs.
        with prefect_api(settings, run_services=True) as api_url:
            from prefect import serve as serve_deployments

            from flows.deployments import replenish_deployments

            typer.echo(f"Prefect API: {api_url}")
            serve_deployments(*replenish_deployments(str(config.resolve()) if config else None, overrides))
    except ServerUnavailableError as error:
        _fail(error, debug)


@app.command()
def trigger(
    flow: Annotated[str, typer.Argument(help="train | plan | monitor | main, or a full FLOW/DEPLOYMENT name.")],
    params: Annotated[list[str] | None, typer.Option("--param", "-p", help="A flow parameter, key=value.")] = None,
    config: ConfigOption = None,
    set_values: SetOption = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the run to finish.")] = False,
    debug: DebugOption = False,
) -> None:
    """Start an ad-hoc run of a served deployment and print its flow-run id.

    Example: replenish trigger train --param 'overrides=["forecast.lstm.max_epochs=20"]'
    """
    from replenish.orchestration import ServerUnavailableError, prefect_api
    from replenish.settings import SettingsError, parse_overrides

    settings = _configured_settings(config, list(set_values or []), debug)
    try:
        parameters = parse_overrides(list(params or []))
    except SettingsError as error:
        _fail(error, debug)
    try:
        with prefect_api(settings):
            from prefect.deployments import run_deployment

            from flows.schedules import SHORT_NAMES

            flow_run = run_deployment(SHORT_NAMES.get(flow, flow), parameters=parameters, timeout=None if wait else 0)
    except ServerUnavailableError as error:
        _fail(error, debug)
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
    verbose: VerboseOption = False,
) -> None:
    """Check input data against the data contract only: no training, no planning.

    Renders Great Expectations Data Docs and logs them to MLflow. Exits 1 when an error rule breaks.

    Example: replenish validate --data sales.csv
    """
    _, checked = _run_flow(
        "flows.validation", "validation_flow", config, _overrides(set_values, data, data_format), data, debug, verbose
    )
    report = checked.report
    lines = [
        f"validation passed: {report.expectations_checked} expectations on "
        + ", ".join(f"{table} ({rows} rows)" for table, rows in report.tables.items()),
        f"  {report.frequency_line}",
    ]
    lines += [f"  warning: {warning.describe()}" for warning in report.warnings]
    lines += [f"  quarantined {len(rows)} row(s) of {table}" for table, rows in checked.quarantined.items()]
    if report.data_docs:
        lines.append(f"  Data Docs: {report.data_docs}")
    typer.echo("\n".join(lines))


UI_STOP_SECONDS = 15  # how long the MLflow server may take to shut down after Ctrl-C before it is killed


@app.command()
def ui(
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = MLFLOW_UI_PORT,
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind; 0.0.0.0 serves the network.")
    ] = MLFLOW_UI_HOST,
    config: ConfigOption = None,
    set_values: SetOption = None,
    debug: DebugOption = False,
) -> None:
    """Open the MLflow UI on the configured tracking store: runs, metrics, plots and registered models.

    Runs `mlflow server` on the store and artifact folder the flows log to, until Ctrl-C.

    Example: replenish ui --port 5001 --set work_dir=/srv/replenish
    """

    from replenish.redaction import redacted_url

    settings = _configured_settings(config, list(set_values or []), debug)
    if settings.mlflow_tracking_uri.startswith(("http://", "https://")):
        typer.echo(f"MLflow UI: {redacted_url(settings.mlflow_tracking_uri)}  (the tracking server serves its own UI)")
        return
    if not _port_free(host, port):
        _fail(OSError(f"port {port} on {host} is in use; choose another with --port"), debug)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    typer.echo(
        f"MLflow UI on {redacted_url(settings.mlflow_tracking_uri)}\n"
        f"  open       http://{shown_host}:{port}  (Ctrl-C to stop)"
    )
    # The server's job runner (GenAI evaluation jobs, a dozen processes) has nothing to do for this project.
    environment = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    returncode = _serve_until_stopped(_mlflow_server_command(settings, host, port), environment)
    if returncode is None:
        typer.echo("MLflow UI stopped")
    elif returncode != 0:
        _fail(RuntimeError(f"mlflow server exited with status {returncode}"), debug)


def _mlflow_server_command(settings: Settings, host: str, port: int) -> list[str]:
    """`mlflow server` from this environment on the configured stores. Runs logged by the flows record
    their own artifact URI, which the server reads directly; the artifact options only place what is
    created through the server (new experiments, proxied uploads) in the same folder."""
    import sys

    executable = Path(sys.executable).parent / "mlflow"
    launcher = [str(executable)] if executable.is_file() else [sys.executable, "-m", "mlflow"]
    command = [
        *launcher,
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        settings.mlflow_tracking_uri,
    ]
    if settings.mlflow_registry_uri != settings.mlflow_tracking_uri:
        command += ["--registry-store-uri", settings.mlflow_registry_uri]
    if settings.mlflow_artifact_location:
        command += [
            "--default-artifact-root",
            settings.mlflow_artifact_location,
            "--artifacts-destination",
            settings.mlflow_artifact_location,
        ]
    return command


def _port_free(host: str, port: int) -> bool:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _serve_until_stopped(command: list[str], environment: dict[str, str]) -> int | None:
    """Run a server until it exits, or until Ctrl-C or SIGTERM stops it; None when stopped, else its exit status.

    The server runs in a process group of its own that dies with this command, even when the command
    is killed with SIGKILL (see replenish.processes), and is stopped as a group: SIGTERM, then SIGKILL
    after UI_STOP_SECONDS."""
    import signal

    from replenish.processes import start_guarded, stop_group

    process = start_guarded(command, environment)
    stopped = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopped
        stopped = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        returncode = process.wait()
    except KeyboardInterrupt:
        stopped = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            returncode = stop_group(process, UI_STOP_SECONDS)
    return None if stopped else returncode


@app.command("generate-data")
def generate_data(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the tables to (created if missing).")],
    items: Annotated[int, typer.Option("--items", help="Number of items.", min=1)] = 20,
    stores: Annotated[int, typer.Option("--stores", help="Number of stores.", min=1)] = 2,
    days: Annotated[int, typer.Option("--days", help="Days of sales history.", min=1)] = 365,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed writes the same data.")] = 7,
    file_format: Annotated[Literal["csv", "parquet"], typer.Option("--format", help="Table file type.")] = "csv",
    debug: DebugOption = False,
) -> None:
    """Write the seeded synthetic data set as a long-format folder: sales, items, inventory, open orders, capacity.

    `replenish run --data OUT_DIR --format long` reads it back.

    Example: replenish generate-data demo_data --items 50 --days 730 --format parquet
    """
    from replenish.data.long_format import OPTIONAL_TABLES, READABLE_SUFFIXES
    from replenish.data.synthetic import SyntheticConfig, generate_synthetic
    from replenish.io import write_atomically

    suffix = f".{file_format}"
    tables = ("sales", *OPTIONAL_TABLES)
    # A folder holds each table in one format only (the reader refuses both); never delete a user's file.
    clashes = [
        out_dir / f"{table}{other}"
        for table in tables
        for other in READABLE_SUFFIXES
        if other != suffix and (out_dir / f"{table}{other}").exists()
    ]
    if clashes:
        _fail(
            FileExistsError(f"{clashes[0]} exists; write --format {clashes[0].suffix[1:]} or to another folder"), debug
        )
    try:
        raw = generate_synthetic(SyntheticConfig(n_items=items, n_stores=stores, n_days=days, seed=seed))
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [
            (write_atomically(out_dir / f"{table}{suffix}", getattr(raw, table)), len(getattr(raw, table)))
            for table in tables
            if getattr(raw, table) is not None
        ]
    except (ValueError, OSError) as error:
        _fail(error, debug)
    lines = [f"synthetic data (seed {seed}: {items} items x {stores} stores x {days} days) written to {out_dir}"]
    lines += [f"  {path.name:<20} {rows:>9,} rows" for path, rows in written]
    lines.append(f"  read it with: replenish run --data {out_dir} --format long")
    typer.echo("\n".join(lines))
