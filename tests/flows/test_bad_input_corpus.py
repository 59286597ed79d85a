"""Every file in tests/data/bad/ must stop `replenish run` with a clear error and publish nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from mlflow import MlflowClient

from replenish.settings import load_settings
from tests.conftest import BAD_INPUT_CORPUS, TINY_RUN, invoke_cli, set_options

CORPUS = BAD_INPUT_CORPUS
PUBLISHED_PLAN = b"item_id,store_id,order_date,quantity,arrival_date\nITEM_A,STORE_1,2024-03-01,12,2024-03-04\n"

# case -> (the file the message must name, what else it must say: column and rule)
EXPECTED = {
    "missing_column.csv": ("missing_column.csv", ["column 'units'", "required column must be present"]),
    "wrong_dtype.csv": ("wrong_dtype.csv", ["column 'units'", "must be whole numbers", "rows 8, 9"]),
    "negative_units.csv": ("negative_units.csv", ["column 'units'", "must be between 0", "rows 5, 71"]),
    "nan_units.csv": ("nan_units.csv", ["column 'units'", "must not be empty", "rows 10"]),
    "duplicate_keys.csv": (
        "duplicate_keys.csv",
        ["column 'item_id, store_id, date'", "one row per item, store and date", "rows 13, 121"],
    ),
    "empty_file.csv": ("empty_file.csv", ["empty file: no header row"]),
    "header_only.csv": ("header_only.csv", ["table sales", "must have at least one data row"]),
    "non_utf8.csv": ("non_utf8.csv", ["not UTF-8"]),
    "unparseable_dates.csv": ("unparseable_dates.csv", ["column 'date'", "must be a date", "rows 4"]),
    "future_dates.csv": ("future_dates.csv", ["column 'date'", "must not be in the future", "rows 60"]),
    "absurd_values.csv": ("absurd_values.csv", ["column 'units'", "between 0 and 1,000,000", "rows 21"]),
    "item_without_master": (
        "item_without_master/sales.csv",
        ["column 'item_id'", "every item sold must have an item master row"],
    ),
    "negative_lead_time": ("negative_lead_time/items.csv", ["column 'lead_time_days'", "must be >= 0", "rows 2"]),
    "case_pack_zero": ("case_pack_zero/items.csv", ["column 'case_pack'", "must be >= 1", "rows 1"]),
    "large_gap.csv": ("large_gap.csv", ["column 'date'", "no gap over 14 days", "rows 21"]),
    "wrong_delimiter.csv": ("wrong_delimiter.csv", ["item_id;store_id", "looks delimited by ';'", "comma-separated"]),
    "wrong_schema.parquet": (
        "wrong_schema.parquet",
        ["column 'item_id'", "column 'units'", "required column must be present"],
    ),
    "negative_price.csv": ("negative_price.csv", ["column 'price'", "must be > 0", "rows 31"]),
    "truncated.csv.gz": ("truncated.csv.gz", ["truncated or corrupt compressed file"]),
    "mixed_frequencies.csv": (
        "mixed_frequencies.csv",
        ["column 'date'", "must follow the data's frequency, daily (D)", "rows 61, 62"],
    ),
    "two_files.csv.zip": (
        "two_files.csv.zip",
        ["Multiple files found in ZIP file", "sales_2023.csv", "sales_2024.csv"],
    ),
}


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stderr: str
    overrides: list[str]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    results = {}
    # One store for the corpus (creating an MLflow database costs seconds); an output folder per case.
    work_dir = tmp_path_factory.mktemp("state")
    for case in EXPECTED:
        workspace = tmp_path_factory.mktemp(case.replace(".", "_"))
        overrides = [f"work_dir={work_dir}", f"output_dir={workspace / 'output'}", *TINY_RUN]
        plan_path = load_settings(overrides=overrides).plan_path
        plan_path.parent.mkdir(parents=True)
        plan_path.write_bytes(PUBLISHED_PLAN)
        # In this process, so one Prefect server serves the whole corpus.
        exit_code, _, stderr = invoke_cli("run", "--data", str(CORPUS / case), *set_options(overrides))
        results[case] = Outcome(exit_code, stderr, overrides)
    return results


def test_corpus_has_every_case() -> None:
    on_disk = {path.name for path in CORPUS.iterdir() if path.name != "make_corpus.py"}
    assert on_disk == set(EXPECTED)
    assert len(EXPECTED) >= 15


@pytest.mark.parametrize("case", list(EXPECTED))
def test_bad_input_is_named_and_nothing_is_published(case: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case]
    file, phrases = EXPECTED[case]

    assert outcome.exit_code == 1, outcome.stderr
    assert "Traceback" not in outcome.stderr
    message = outcome.stderr[outcome.stderr.index("error: ") :]
    assert str(CORPUS / file) in message
    for phrase in phrases:
        assert phrase in message

    settings = load_settings(overrides=outcome.overrides)
    assert settings.plan_path.read_bytes() == PUBLISHED_PLAN
    assert [path.name for path in settings.output_dir.iterdir()] == [settings.plan_path.name]
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    assert client.search_model_versions(f"name='{settings.tracking.registered_model_name}'") == []
