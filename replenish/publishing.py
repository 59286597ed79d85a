"""Publish a plan's files as one unit (each file written as replenish.io writes files).

A plan is several files (the orders, their explanations, the demand, the report) that only make
sense together. Each plan is written into its own folder, ``plans/<created>-<run id>/``, built
under a hidden temporary name and renamed into place once complete, with a ``manifest.json``
written last. The symlink ``current`` then points at it, and every stable name a user reads
(``order_plan.csv``, ...) is a symlink through ``current``; so one atomic rename of ``current``
switches every file at once, and a publish killed at any point leaves the old plan or the new one.

Only files, folders and links: which files a plan has is replenish/plan_output.py.  This module
imports only pandas and replenish.io, so what loads settings or publishes starts in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from replenish.io import TEMPORARY_NAME, Content, encoded, temporary_name, write_new_file

PLANS_FOLDER = "plans"
PLAN_FILE = "order_plan.csv"  # the projected plan over the horizon (settings.plan_path)
PURCHASE_ORDERS_FILE = "purchase_orders.csv"
VIOLATIONS_FILE = "constraint_violations.csv"
EXPLAINED_FILE = "order_plan_explained.csv"
DEMAND_FILE = "plan_demand.csv"
REPORT_FILE = "plan_report.html"
INVENTORY_FILE = "projected_inventory.csv"  # logged with the plan's tables, not published
CURRENT_LINK = "current"
MANIFEST = "manifest.json"
KEEP_PLANS = 10  # plan folders kept, the current one included: enough to compare or roll back by hand


class PublishError(OSError):
    """The plan could not be written; the previously published plan is unchanged."""


def publish_unit(
    output_dir: Path, files: Mapping[str, Content], run_id: str, created: datetime, keep: int = KEEP_PLANS
) -> Path:
    """Publish ``files`` (by name) as one plan and make it current; return its folder.

    Idempotent: a retry with the same run id and creation time reuses the folder it completed.
    On failure (disk full, no permission) raises PublishError, leaving the current plan as it was."""
    plans = output_dir / PLANS_FOLDER
    folder = plans / plan_folder_name(run_id, created)
    try:
        plans.mkdir(parents=True, exist_ok=True)
        remove_leftovers(output_dir)
        if not folder.exists():  # it exists only complete: it is renamed into place once built
            _build_folder(folder, files, run_id, created)
        # New names link through `current` before the switch, so they appear with the rest of the plan.
        for name in files:
            _link(output_dir / name, f"{CURRENT_LINK}/{name}")
        _link(output_dir / CURRENT_LINK, f"{PLANS_FOLDER}/{folder.name}")
        _sync_folder(output_dir)
    except OSError as error:
        raise PublishError(f"could not write the plan to {output_dir}: {error.strerror or error}") from error
    prune_plans(output_dir, keep)
    return folder


def plan_folder_name(run_id: str, created: datetime) -> str:
    """Names sort in the order plans were created, which is what retention goes by."""
    return f"{created.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{run_id}"


def manifest(files: Mapping[str, bytes], rows: Mapping[str, int], run_id: str, created: datetime) -> str:
    return (
        json.dumps(
            {
                "run_id": run_id,
                "created": created.astimezone(UTC).isoformat(),
                "files": [
                    {
                        "name": name,
                        "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        **({"rows": rows[name]} if name in rows else {}),
                    }
                    for name, data in files.items()
                ],
            },
            indent=2,
        )
        + "\n"
    )


def remove_leftovers(output_dir: Path) -> None:
    """Temporary files, links and half-built plan folders of publishes that were killed."""
    for path in [*output_dir.glob(".*.tmp"), *(output_dir / PLANS_FOLDER).glob(".*.tmp")]:
        match = TEMPORARY_NAME.match(path.name)
        if match is None or not _process_alive(int(match["pid"])):
            _remove(path)


def prune_plans(output_dir: Path, keep: int) -> None:
    """All but the newest ``keep`` (at least 1) plan folders; never the current one."""
    current = os.path.basename(os.readlink(output_dir / CURRENT_LINK))
    folders = sorted(path for path in (output_dir / PLANS_FOLDER).iterdir() if not path.name.startswith("."))
    for folder in folders[:-keep]:
        if folder.name != current:
            _remove(folder)


def _build_folder(folder: Path, files: Mapping[str, Content], run_id: str, created: datetime) -> None:
    staging = temporary_name(folder)
    staging.mkdir()
    try:
        contents = {name: encoded(content, Path(name).suffix) for name, content in files.items()}
        for name, data in contents.items():
            write_new_file(staging / name, data)
        rows = {name: len(content) for name, content in files.items() if isinstance(content, pd.DataFrame)}
        # Last, so a folder with a manifest holds every file it lists.
        write_new_file(staging / MANIFEST, manifest(contents, rows, run_id, created).encode("utf-8"))
        _sync_folder(staging)
        os.rename(staging, folder)
        _sync_folder(folder.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _link(path: Path, target: str) -> None:
    """Point the symlink ``path`` at ``target`` in one rename, replacing whatever file was there."""
    if path.is_symlink() and os.readlink(path) == target:
        return
    temporary = temporary_name(path)
    try:
        os.symlink(target, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _sync_folder(folder: Path) -> None:
    """Renames inside ``folder`` survive a power cut once this returns."""
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    return True


def _remove(path: Path) -> None:
    # Another publish may be removing the same leftover: what is gone already is fine.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
