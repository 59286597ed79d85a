"""Publish validation results as a Great Expectations Data Docs site (static HTML) in a chosen folder."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import great_expectations as gx
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.store.store import DataDocsSiteConfigTypedDict
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

SITE_NAME = "replenish"
RUN_NAME = "replenish"


def _point_site_at(context: AbstractDataContext, site_dir: Path) -> None:
    """Add (or re-point) our own site, leaving the context's default temp-dir site unbuilt."""
    # GX types a site's config with fewer keys than its SiteBuilder takes (show_how_to_buttons among them).
    config = cast(
        DataDocsSiteConfigTypedDict,
        {
            "class_name": "SiteBuilder",
            # The how-to buttons only link to GX's online onboarding; they say nothing about our data.
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        },
    )
    if SITE_NAME in context.list_data_docs_sites():
        context.update_data_docs_site(SITE_NAME, config)
    else:
        context.add_data_docs_site(SITE_NAME, config)


def _ensure_suite(context: AbstractDataContext, result: ExpectationSuiteValidationResult) -> None:
    """Results from another context need their suite here too, or the index links to a missing suite page."""
    if context.expectations_store.has_key(ExpectationSuiteIdentifier(name=result.suite_name)):
        return
    configs = [r.expectation_config for r in result.results if r.expectation_config]
    context.suites.add(gx.ExpectationSuite(name=result.suite_name, expectations=configs))


def _store_result(
    context: AbstractDataContext, result: ExpectationSuiteValidationResult, run_id: RunIdentifier
) -> ValidationResultIdentifier:
    """Keep the result where the site builder looks for it; batch.validate() alone stores nothing."""
    # The page header reads the run from meta; a copy leaves the caller's result untouched.
    stored = copy.deepcopy(result)
    stored.meta["run_id"] = run_id
    # Named after the table, so each page is validations/<suite>/<run>/<time>/<table>.html.
    batch = (result.meta.get("active_batch_definition") or {}).get("data_asset_name") or "__none__"
    key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=result.suite_name), run_id, batch)
    context.validation_results_store.set(key, stored)
    return key


def render_data_docs(
    context: AbstractDataContext, results: Sequence[ExpectationSuiteValidationResult], site_dir: Path
) -> Path:
    """Write Great Expectations Data Docs (static HTML) for these validation results into site_dir; return the
    index.html path."""
    site_dir = Path(site_dir).resolve()
    _point_site_at(context, site_dir)
    run_id = RunIdentifier(run_name=RUN_NAME, run_time=datetime.datetime.now(datetime.UTC))
    keys: list[ValidationResultIdentifier] = []
    for result in results:
        _ensure_suite(context, result)
        keys.append(_store_result(context, result, run_id))
    context.build_data_docs(site_names=[SITE_NAME])
    # GX logs page-rendering errors instead of raising them; a missing page must not pass silently.
    missing = [
        key.expectation_suite_identifier.name
        for key in keys
        if not context.get_docs_sites_urls(resource_identifier=key, site_name=SITE_NAME)[0]["site_url"]
    ]
    if missing:
        raise RuntimeError(f"Data Docs has no page for the validation of suite(s) {missing} in {site_dir}")
    return site_dir / "index.html"
