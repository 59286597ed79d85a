"""Atomic files and plans published as one unit: readable, switched at once, never half-written,
even when the publishing process is killed or the disk fills up."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from optimization.planning import PlanOutlook
from replenish import publishing
from replenish.io import write_atomically
from replenish.plan_output import PublishedPlan
from replenish.publishing import CURRENT_LINK, MANIFEST, PLANS_FOLDER, PublishError, publish_unit
from tests.conftest import REPOSITORY

NAMES = ["order_plan.csv", "order_plan_explained.csv", "plan_demand.csv", "plan_report.html"]
START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
PROJECT = REPOSITORY
WAIT_SECONDS = 60


def unit(run_id: str, rows: int = 3) -> dict[str, pd.DataFrame | str]:
    """A plan whose every file names its run, so a mix of two plans shows."""
    table = pd.DataFrame({"run": run_id, "value": range(rows)})
    return {
        "order_plan.csv": table,
        "order_plan_explained.csv": table,
        "plan_demand.csv": table,
        "plan_report.html": f"<!DOCTYPE html><p>{run_id}</p>\n" + "x" * rows,
    }


def publish(output: Path, run_id: str, order: int, keep: int = publishing.KEEP_PLANS, rows: int = 3) -> Path:
    return publish_unit(output, unit(run_id, rows), run_id, START + timedelta(minutes=order), keep)


def current_run(output: Path) -> str:
    return json.loads((output / CURRENT_LINK / MANIFEST).read_text())["run_id"]


def assert_one_whole_plan(output: Path) -> str:
    """Every stable path reads the current plan, whole: the bytes its manifest lists."""
    run_id = current_run(output)
    listed = {entry["name"]: entry for entry in json.loads((output / CURRENT_LINK / MANIFEST).read_text())["files"]}
    assert sorted(listed) == sorted(NAMES)
    for name in NAMES:
        data = (output / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == listed[name]["sha256"], name
        assert run_id.encode() in data, name
    return run_id


def leftovers(output: Path) -> list[str]:
    return sorted(path.name for path in [*output.glob(".*"), *(output / PLANS_FOLDER).glob(".*")])


def plan_folders(output: Path) -> list[str]:
    return sorted(path.name for path in (output / PLANS_FOLDER).iterdir())


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_replaces_the_whole_file_as_csv_parquet_or_text(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    write_atomically(path, pd.DataFrame({"a": [1, 2]}))
    assert write_atomically(path, pd.DataFrame({"a": [3]})) == path
    assert path.read_text() == "a\n3\n"
    write_atomically(tmp_path / "plan.parquet", pd.DataFrame({"a": [4]}))
    assert pd.read_parquet(tmp_path / "plan.parquet")["a"].tolist() == [4]
    write_atomically(tmp_path / "note.txt", "é\n")
    assert (tmp_path / "note.txt").read_text(encoding="utf-8") == "é\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["note.txt", "plan.csv", "plan.parquet"]


def test_failed_write_leaves_the_published_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plan.csv"
    path.write_text("published\n")

    def full_disk(handle: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publishing.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, pd.DataFrame({"a": [1]}))
    assert path.read_text() == "published\n"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.csv"]


@pytest.mark.parametrize(
    ("mask", "file_mode", "folder_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)], ids=["umask 022", "umask 027"]
)
def test_files_are_readable_as_the_umask_allows(tmp_path: Path, mask: int, file_mode: int, folder_mode: int) -> None:
    with umask(mask):
        single = write_atomically(tmp_path / "sales.csv", pd.DataFrame({"a": [1]}))
        folder = publish(tmp_path / "output", "run-1", 1)
    assert mode(single) == file_mode
    assert mode(folder) == folder_mode
    assert {name: mode(folder / name) for name in [*NAMES, MANIFEST]} == dict.fromkeys([*NAMES, MANIFEST], file_mode)
    assert all(mode(tmp_path / "output" / name) == file_mode for name in NAMES)  # through the links


def test_a_publish_switches_every_stable_path_at_once(tmp_path: Path) -> None:
    output = tmp_path / "output"
    publish(output, "run-1", 1)
    second = publish(output, "run-2", 2, rows=5)

    assert os.readlink(output / CURRENT_LINK) == f"{PLANS_FOLDER}/{second.name}"
    for name in NAMES:
        assert os.readlink(output / name) == f"{CURRENT_LINK}/{name}"
    assert assert_one_whole_plan(output) == "run-2"
    assert pd.read_csv(output / "order_plan.csv")["run"].unique().tolist() == ["run-2"]
    manifest = json.loads((second / MANIFEST).read_text())
    assert manifest["created"] == (START + timedelta(minutes=2)).isoformat()
    assert {entry["name"]: entry.get("rows") for entry in manifest["files"]} == {
        "order_plan.csv": 5,
        "order_plan_explained.csv": 5,
        "plan_demand.csv": 5,
        "plan_report.html": None,
    }
    assert leftovers(output) == []


def test_old_plans_beyond_the_kept_number_are_removed(tmp_path: Path) -> None:
    output = tmp_path / "output"
    folders = [publish(output, f"run-{order}", order, keep=3).name for order in range(1, 6)]
    assert plan_folders(output) == folders[-3:]
    assert current_run(output) == "run-5"


def test_the_current_plan_is_kept_even_when_older_than_the_rest(tmp_path: Path) -> None:
    output = tmp_path / "output"
    newer = [publish(output, f"run-{order}", order).name for order in (5, 6)]
    current = publish(output, "run-1", 1, keep=1).name  # e.g. a clock set back
    assert plan_folders(output) == sorted([current, newer[-1]])
    assert_one_whole_plan(output)


def test_a_retried_publish_reuses_its_complete_folder(tmp_path: Path) -> None:
    output = tmp_path / "output"
    first = publish(output, "run-1", 1)
    manifest_inode = (first / MANIFEST).stat().st_ino
    assert publish(output, "run-1", 1) == first
    assert (first / MANIFEST).stat().st_ino == manifest_inode
    assert plan_folders(output) == [first.name]


def test_a_file_of_an_older_version_becomes_a_link(tmp_path: Path) -> None:
    output = tmp_path / "output"
    output.mkdir()
    (output / "order_plan.csv").write_text("item_id\nA\n")
    publish(output, "run-1", 1)
    assert (output / "order_plan.csv").is_symlink()
    assert_one_whole_plan(output)


def test_a_file_only_some_plans_have_is_there_exactly_when_the_current_plan_has_it(tmp_path: Path) -> None:
    output = tmp_path / "output"
    publish_unit(
        output, {**unit("run-1"), "constraint_violations.csv": pd.DataFrame({"run": ["run-1"]})}, "run-1", START
    )
    assert (output / "constraint_violations.csv").read_text() == "run\nrun-1\n"
    publish(output, "run-2", 2)
    assert not (output / "constraint_violations.csv").exists()


def test_a_plan_made_in_soft_mode_is_summed_up_broken_constraints_first(tmp_path: Path) -> None:
    broken = [f"capacity at store S{n}" for n in range(4)]
    plan = PublishedPlan(
        *(
            tmp_path / name
            for name in (
                publishing.PURCHASE_ORDERS_FILE,
                publishing.PLAN_FILE,
                publishing.DEMAND_FILE,
                publishing.EXPLAINED_FILE,
                publishing.REPORT_FILE,
                publishing.VIOLATIONS_FILE,
            )
        ),
        tmp_path / PLANS_FOLDER / "one",
        pd.Timestamp("2025-03-02"),
        2,
        30.0,
        45.5,
        5,
        80.0,
        120.25,
        PlanOutlook(0.975, 130.0, 0.02, 200),
        "optimal",
        broken,
    )
    lines = plan.summary_lines()
    assert lines[0].startswith("  BROKEN     4 constraint(s), planned in soft mode: capacity at store S0; ")
    assert lines[0].endswith(f"; ... (all in {tmp_path / 'constraint_violations.csv'})")
    assert lines[1] == "  orders     2 purchase order(s) due 2025-03-02: 30 units, cost 45.50"
    figures = {row["figure"]: row["value"] for row in plan.key_figures()}
    assert figures["purchase orders due 2025-03-02"] == "2" and figures["expected fill rate"] == "97.5%"
    assert figures["broken constraints (soft mode)"] == "4"


def test_leftovers_of_dead_publishes_are_removed_and_a_live_ones_are_not(tmp_path: Path) -> None:
    output = tmp_path / "output"
    publish(output, "run-1", 1)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=True,
    )
    dead, alive = int(finished.stdout), os.getpid()
    (output / ".plan_demand.csv.k2j4h1.tmp").write_text("half a pla")  # an older version's mkstemp name
    (output / f".order_plan.csv.{dead}-0a1b2c3d.tmp").write_text("half")
    os.symlink("plans/gone", output / f".current.{dead}-0a1b2c3d.tmp")
    (output / PLANS_FOLDER / f".20250301T090000000000Z-run-x.{dead}-00ff00ff.tmp").mkdir()
    (output / PLANS_FOLDER / f".20250301T090000000000Z-run-x.{dead}-00ff00ff.tmp" / "order_plan.csv").write_text("h")
    busy = output / PLANS_FOLDER / f".20250301T090000000000Z-run-y.{alive}-00ff00ff.tmp"
    busy.mkdir()

    publish(output, "run-2", 2)

    assert leftovers(output) == [busy.name]
    assert_one_whole_plan(output)


def test_a_plan_that_cannot_be_written_fails_with_one_line_and_leaves_the_old_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "output"
    publish(output, "run-1", 1)
    before = {name: (output / name).read_bytes() for name in NAMES}
    monkeypatch.setattr(publishing, "write_new_file", failing_write)
    with pytest.raises(PublishError) as raised:
        publish(output, "run-2", 2)
    assert str(raised.value) == f"could not write the plan to {output}: Permission denied"
    assert {name: (output / name).read_bytes() for name in NAMES} == before
    assert leftovers(output) == [] and len(plan_folders(output)) == 1


def failing_write(path: Path, data: bytes) -> None:
    raise PermissionError(13, "Permission denied", str(path))


# --- in another process: killed while it publishes, or out of disk -------------------------------

# Publishes plan argv[2] into argv[1], keeping 3 plans, and SIGKILLs itself around one step:
# argv[3] names a function of replenish.publishing, or os.rename (the folder's move into place) or
# os.unlink (removing an old plan's files),
# argv[4] which call of it, argv[5] "before" or "after" it.
KILLED_PUBLISH = """
import os, signal, sys
from datetime import datetime, timezone
import pandas as pd
from replenish import publishing

output, run_id, step, call, when = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
owner = os if step in ("rename", "unlink") else publishing
original, calls = getattr(owner, step), []

def killed_around(*args, **kwargs):
    calls.append(1)
    if len(calls) == call and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    if len(calls) == call and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, step, killed_around)
table = pd.DataFrame({"run": run_id, "value": range(200_000)})
files = {"order_plan.csv": table, "order_plan_explained.csv": table, "plan_demand.csv": table,
         "plan_report.html": "<!DOCTYPE html><p>" + run_id + "</p>"}
publishing.publish_unit(__import__("pathlib").Path(output), files, run_id, datetime.now(timezone.utc), keep=3)
sys.exit("published without being killed")
"""

# Publishes plans into argv[1] one after another until killed, saying "ready" once imports are done.
PUBLISH_FOREVER = """
import sys
from datetime import datetime, timezone
from pathlib import Path
import pandas as pd
from replenish.publishing import publish_unit

table = pd.DataFrame({"value": range(300_000)})
print("ready", flush=True)
for number in range(10**6):
    run_id = f"loop-{number}"
    names = ["order_plan.csv", "order_plan_explained.csv", "plan_demand.csv"]
    files = {name: table.assign(run=run_id) for name in names}
    files["plan_report.html"] = "<!DOCTYPE html><p>" + run_id + "</p>"
    publish_unit(Path(sys.argv[1]), files, run_id, datetime.now(timezone.utc), keep=3)
"""

# Publishes one big plan into argv[1] under a file-size limit of argv[2] bytes, as on a full disk.
PUBLISH_ON_A_FULL_DISK = """
import resource, signal, sys
from datetime import datetime, timezone
from pathlib import Path
import pandas as pd
from replenish.publishing import PublishError, publish_unit

table = pd.DataFrame({"run": "big", "value": range(200_000)})
files = {"order_plan.csv": table, "order_plan_explained.csv": table, "plan_demand.csv": table,
         "plan_report.html": "<p>big</p>"}
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG instead
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    publish_unit(Path(sys.argv[1]), files, "big", datetime.now(timezone.utc))
except PublishError as error:
    sys.exit(str(error))
"""


@contextmanager
def started(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A Python process in its own process group, killed with its group whatever happens."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=WAIT_SECONDS)


# Steps of the publish: while writing the plan's files, with its folder complete but not in place,
# in place but not current, mid-way through the stable links, around the switch of `current`, and
# before and while removing an old plan. Five files are written (four and the manifest), five
# links made.
KILL_POINTS = [
    ("write_new_file", 1, "after"),
    ("write_new_file", 4, "before"),
    ("write_new_file", 5, "after"),
    ("rename", 1, "before"),
    ("rename", 1, "after"),
    ("_link", 2, "after"),
    ("_link", 5, "before"),
    ("_link", 5, "after"),
    ("prune_plans", 1, "before"),
    ("unlink", 2, "after"),
]


def test_a_publish_killed_at_any_step_leaves_one_whole_plan_and_the_next_cleans_up(tmp_path: Path) -> None:
    output = tmp_path / "output"
    for order in range(1, 4):
        publish(output, f"clean-{order}", order)
    for number, (step, call, when) in enumerate(KILL_POINTS):
        previous = current_run(output)
        with started(KILLED_PUBLISH, str(output), f"killed-{number}", step, str(call), when) as process:
            _, stderr = process.communicate(timeout=WAIT_SECONDS)
        assert process.returncode == -signal.SIGKILL, (step, call, when, stderr[-2000:])

        assert assert_one_whole_plan(output) in {previous, f"killed-{number}"}, (step, call, when)

        publish_unit(output, unit(f"after-{number}"), f"after-{number}", datetime.now(UTC), keep=3)
        assert leftovers(output) == [], (step, call, when)
        assert len(plan_folders(output)) == 3
        assert assert_one_whole_plan(output) == f"after-{number}"


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.45, 0.7, 1.0])
def test_a_publish_killed_at_any_moment_leaves_one_whole_plan(tmp_path: Path, delay: float) -> None:
    output = tmp_path / "output"
    publish(output, "clean-1", 1)
    with started(PUBLISH_FOREVER, str(output)) as process:
        assert process.stdout.readline() == "ready\n"
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=WAIT_SECONDS)
    assert_one_whole_plan(output)
    publish_unit(output, unit("after"), "after", datetime.now(UTC), keep=3)
    assert leftovers(output) == []
    assert assert_one_whole_plan(output) == "after"


def test_a_full_disk_fails_the_publish_with_one_line_and_leaves_the_old_plan_byte_for_byte(tmp_path: Path) -> None:
    output = tmp_path / "output"
    publish(output, "run-1", 1)
    before = {path.relative_to(output): path.read_bytes() for path in output.rglob("*") if path.is_file()}
    links = {path.name: os.readlink(path) for path in output.iterdir() if path.is_symlink()}

    with started(PUBLISH_ON_A_FULL_DISK, str(output), str(256 * 1024)) as process:
        _, stderr = process.communicate(timeout=WAIT_SECONDS)

    assert process.returncode == 1
    assert stderr == f"could not write the plan to {output}: File too large\n"
    assert {path.relative_to(output): path.read_bytes() for path in output.rglob("*") if path.is_file()} == before
    assert {path.name: os.readlink(path) for path in output.iterdir() if path.is_symlink()} == links
    assert leftovers(output) == []
    assert assert_one_whole_plan(output) == "run-1"
