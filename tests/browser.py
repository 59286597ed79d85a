"""Headless Chromium for the browser tests of the MLflow and Prefect UIs (tests/test_browser_*.py).

Chromium renders the pages (both UIs are JavaScript apps: plain HTTP gets only an empty shell);
--dump-dom prints the DOM once the page settles. Needs the Debian package ``chromium`` (``make test``
installs it).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium is not installed: `make test` installs it "
        "(apt-get install --no-install-recommends chromium)",
    ),
]
WINDOW = (1400, 900)
# Chromium's virtual time waits for the page's own requests; a slow machine gets more on a retry.
TIME_BUDGETS_MS = (15_000, 30_000, 60_000)


def chromium(*args: str, profile: Path, budget_ms: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--virtual-time-budget={budget_ms}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=budget_ms / 1000 + 90,
    )


def visible_text(dom: str) -> str:
    """What a reader sees: the DOM without scripts, styles and tags, whitespace collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def render(url: str, expected: list[str], profile: Path) -> str:
    """The rendered DOM of ``url``, retried with more time while an expected text is still missing."""
    dom = ""
    for budget in TIME_BUDGETS_MS:
        result = chromium("--dump-dom", url, profile=profile, budget_ms=budget)
        assert result.returncode == 0, result.stderr[-3000:]
        dom = result.stdout
        if all(text in visible_text(dom) for text in expected):
            break
    return dom


def missing(expected: list[str], dom: str) -> list[str]:
    text = visible_text(dom)
    return [item for item in expected if item not in text]
