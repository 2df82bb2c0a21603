"""Open a vaekit report.html in a real headless Chromium and check what a reader would see.

Reusable from any test: ``check_report_in_browser(path, expected_images, screenshot=...)``.
Playwright drives Debian's chromium through ``executable_path`` (it never downloads a browser).
Without playwright or chromium the calling test is skipped, unless ``VAEKIT_REQUIRE_BROWSER=1``
(set by CI after installing chromium), in which case it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000

# What the page shows: every image's decoding state, the captions, the two tables as text.
_INSPECT = """() => ({
  images: Array.from(document.images).map(img => ({
    alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth,
    naturalHeight: img.naturalHeight, scheme: img.src.split(":")[0]})),
  captions: Array.from(document.querySelectorAll("figure figcaption")).map(c => c.textContent),
  titles: Array.from(document.querySelectorAll("figure .figure-title")).map(t => t.textContent),
  metrics: document.querySelector("#metrics") ? document.querySelector("#metrics").innerText : null,
  metricRows: Array.from(document.querySelectorAll("#metrics tbody tr")).map(
    r => Array.from(r.children).map(c => c.textContent)),
  config: document.querySelector("#config") ? document.querySelector("#config").innerText : null,
  title: document.title,
})"""


def browser_required() -> bool:
    """True when the environment demands a real browser check (CI): no skipping."""
    return os.environ.get("VAEKIT_REQUIRE_BROWSER", "") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the calling test, or fail it when ``VAEKIT_REQUIRE_BROWSER=1``."""
    if browser_required():
        pytest.fail(f"{reason} (VAEKIT_REQUIRE_BROWSER=1, so this is an error, not a skip)")
    pytest.skip(reason)


def chromium_path() -> str | None:
    """Debian's chromium: on PATH, or at /usr/bin/chromium."""
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextmanager
def headless_page(width: int = 1200, height: int = 900) -> Iterator:
    """A fresh page of Debian's headless chromium, closed on leaving.

    Skips the calling test (fails it under ``VAEKIT_REQUIRE_BROWSER=1``) when playwright or
    chromium is missing or chromium does not start; a browser that starts and then breaks
    fails the test.
    """
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed")
    executable = chromium_path()
    if executable is None:
        skip_or_fail("no chromium executable (install Debian's chromium package)")
    try:
        with sync_playwright() as p:
            try:
                chromium = p.chromium.launch(
                    executable_path=executable, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
                )
            except PlaywrightError as error:
                skip_or_fail(f"chromium at {executable} did not start: {error}")
            try:
                page = chromium.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(TIMEOUT_MS)
                yield page
            finally:
                chromium.close()
    except PlaywrightError as error:  # a browser that starts but breaks: a real failure
        pytest.fail(f"the browser failed: {error}")


def check_report_in_browser(
    html_path: str | os.PathLike,
    expected_images: int | Sequence[str],
    screenshot: str | os.PathLike | None = None,
    *,
    expected_metrics: Mapping[str, str] | Iterable[str] | None = None,
) -> dict:
    """Load ``html_path`` in headless Chromium and assert that the report renders.

    Checks: every ``<img>`` decoded (naturalWidth > 0) from a data URI, their count equals
    ``expected_images`` (a number, or the figure titles in order), ``#metrics`` and ``#config``
    exist, the metric names (and, for a mapping, the displayed values) are in ``#metrics``,
    and the page requested nothing beyond itself. Saves a full-page screenshot to
    ``screenshot`` when given. Returns what it found, for further assertions.
    """
    html_path = Path(html_path).resolve()
    assert html_path.is_file(), f"{html_path} does not exist"
    requested: list[str] = []
    failed: list[str] = []
    with headless_page() as page:
        page.on("request", lambda request: requested.append(request.url))
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(html_path.as_uri(), wait_until="load")
        found = page.evaluate(_INSPECT)
        if screenshot is not None:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)

    images = found["images"]
    if isinstance(expected_images, int):
        assert len(images) == expected_images, f"{len(images)} images, not {expected_images}"
    else:
        expected = list(expected_images)
        assert [img["alt"] for img in images] == expected, (images, expected)
        assert found["titles"][: len(expected)] == expected
    broken = [img for img in images if not (img["complete"] and img["naturalWidth"] > 0)]
    assert not broken, f"images that did not decode: {broken}"
    assert all(img["scheme"] == "data" for img in images), "an image is not embedded"
    assert found["metrics"] is not None, "no #metrics table"
    assert found["config"] is not None, "no #config table"
    shown = {row[0]: row[1] for row in found["metricRows"] if len(row) >= 2}
    if expected_metrics is not None:
        for name in expected_metrics:  # a mapping iterates over its names
            assert name in shown, f"metric {name!r} is not in #metrics: {shown}"
        if isinstance(expected_metrics, Mapping):
            for name, value in expected_metrics.items():
                assert shown[name] == value, (
                    f"#metrics shows {name} = {shown[name]!r}, not {value!r}"
                )
    outside = [url for url in requested if not url.startswith(("file:", "data:"))]
    assert not outside, f"the report requested external resources: {outside}"
    assert not failed, f"requests that failed: {failed}"
    found["requests"] = requested
    found["metrics_shown"] = shown
    return found
