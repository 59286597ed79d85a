"""Data Docs: an offline HTML site whose index lists every validation and whose pages show what failed and why."""

from __future__ import annotations

import html
import re
import socket
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import pytest
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.render.renderer import ValidationResultsPageRenderer

from expectations.data_docs import render_data_docs

SUITES = ["sales_contract", "items_contract"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def validated() -> tuple[AbstractDataContext, list[ExpectationSuiteValidationResult]]:
    """Sales breaking two rules (negative units, a duplicate order) and passing one; items passing everything."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("replenish")
    frames = {
        "sales": pd.DataFrame({"order_id": ["O-1", "O-DUP", "O-DUP"], "units": [4, -37, 2]}),
        "items": pd.DataFrame({"item_id": ["A", "B"]}),
    }
    expectations = {
        "sales": [
            gxe.ExpectColumnValuesToBeBetween(column="units", min_value=0),
            gxe.ExpectColumnValuesToBeUnique(column="order_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="units"),
        ],
        "items": [gxe.ExpectColumnValuesToBeUnique(column="item_id")],
    }
    results = []
    for table, frame in frames.items():
        asset = source.add_dataframe_asset(table)
        batch = asset.add_batch_definition_whole_dataframe(table).get_batch(batch_parameters={"dataframe": frame})
        suite = context.suites.add(gx.ExpectationSuite(name=f"{table}_contract", expectations=expectations[table]))
        results.append(batch.validate(suite, result_format={"result_format": "COMPLETE"}))
    return context, results


def visible_text(page: Path) -> str:
    """The page as a reader sees it, so a match cannot come from CSS, scripts or attributes."""
    markup = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def validation_pages(site_dir: Path) -> dict[str, list[Path]]:
    """Suite name -> its validation pages (validations/<suite>/<run name>/<run time>/<batch>.html)."""
    return {suite: sorted((site_dir / "validations" / suite).rglob("*.html")) for suite in SUITES}


def test_site_lists_every_validation_and_shows_failures(validated, tmp_path: Path) -> None:
    context, results = validated
    index = render_data_docs(context, results, tmp_path / "docs")

    assert index == (tmp_path / "docs" / "index.html").resolve()
    assert index.is_file()
    pages = validation_pages(index.parent)
    assert all(len(found) == 1 for found in pages.values()), pages
    # The index table is filled in by script from this embedded data, so the links live in the raw HTML.
    index_html = index.read_text()
    for found in pages.values():
        assert found[0].relative_to(index.parent).as_posix() in index_html

    sales = visible_text(pages["sales_contract"][0])
    assert "Unsuccessful Expectations 2" in sales
    assert "units" in sales and "-37" in sales
    assert "order_id" in sales and "O-DUP" in sales
    assert (index.parent / "expectations" / "sales_contract.html").is_file()
    assert "run_id" not in results[0].meta  # the caller's result is left as it was


def test_rendering_twice_into_the_same_folder_adds_the_new_run(validated, tmp_path: Path) -> None:
    context, results = validated
    site_dir = tmp_path / "docs"
    render_data_docs(context, results, site_dir)
    index = render_data_docs(context, results, site_dir)

    assert index.is_file()
    assert all(len(found) == 2 for found in validation_pages(site_dir).values())


def test_results_from_another_context_replace_the_folder_contents(validated, tmp_path: Path) -> None:
    context, results = validated
    site_dir = tmp_path / "docs"
    render_data_docs(context, results, site_dir)
    index = render_data_docs(gx.get_context(mode="ephemeral"), results[:1], site_dir)

    # The fresh context only knows the sales result: GX drops the pages it has no source for, and
    # the suite is rebuilt from the result so its page still exists.
    pages = validation_pages(site_dir)
    assert len(pages["sales_contract"]) == 1 and not pages["items_contract"]
    assert (site_dir / "expectations" / "sales_contract.html").is_file()
    assert "O-DUP" in visible_text(pages["sales_contract"][0])
    assert "items_contract" not in index.read_text()


def test_a_page_gx_fails_to_render_is_an_error(validated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GX only logs rendering errors; render_data_docs must not report a site with holes as done.
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("renderer broke")

    monkeypatch.setattr(ValidationResultsPageRenderer, "render", broken)
    context, results = validated
    with pytest.raises(RuntimeError, match="sales_contract"):
        render_data_docs(context, results, tmp_path / "docs")
