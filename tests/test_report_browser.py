"""report.html: its content as text, and the page as a real headless Chromium renders it."""

import html
import re
from pathlib import Path

import browser
import numpy as np
import pytest
from browser import check_report_in_browser

from vaekit import plots
from vaekit.report import REPORT_FILE, format_value, write_report

METRICS = {
    "log p(x) (nats)": -165.2391,
    "ELBO (nats)": np.float64(-169.861),
    "5-NN accuracy": 0.856,
    "epochs": 12,
    "likelihood": "gaussian <shared σ>",
}
CONFIG = {
    "estimator": "VAE",
    "n_components": 2,
    "hidden_sizes": [64, 32],
    "nested": {"beta": 1.0, "free_bits": None},
}
HISTORY = [
    {"epoch": e + 1, "loss": 90.0 - e, "reconstruction": 80.0 - e, "kl": 10.0, "val_loss": 95.5}
    for e in range(8)
]


def _pictures(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    images = rng.random((16, 64))
    return {
        "samples": plots.image_grid(images, (1, 8, 8), folder / "samples.png"),
        "latent space": plots.latent_scatter(
            rng.normal(size=(50, 2)), folder / "latent.png", labels=rng.integers(0, 3, 50)
        ),
        "training <curves> & more": plots.training_curves(HISTORY, folder / "curves.png"),
    }


@pytest.fixture
def report(tmp_path) -> tuple[Path, dict[str, Path]]:
    images = _pictures(tmp_path)
    path = write_report(
        tmp_path,
        title="Run <digits> & friends",
        config=CONFIG,
        metrics=METRICS,
        history=HISTORY,
        images=images,
        notes="Trained on 1437 digits.\nSecond line <b>not bold</b>.",
    )
    return path, images


def test_report_is_one_escaped_self_contained_page(report, tmp_path):
    path, images = report
    assert path == tmp_path / REPORT_FILE
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in text
    assert "<title>Run &lt;digits&gt; &amp; friends</title>" in text
    assert "<b>not bold</b>" not in text and "&lt;b&gt;not bold&lt;/b&gt;" in text
    assert text.count('<img src="data:image/png;base64,') == len(images)
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text), "an external resource"
    assert "<script" not in text
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", text)
    assert captions == [html.escape(k) for k in images]  # in the dict's order, escaped
    assert '<table id="metrics">' in text and '<table id="config">' in text
    assert "-165.24" in text and "0.856" in text and ">12<" in text
    assert html.escape("[64, 32]") in text
    assert html.escape('{"beta": 1.0, "free_bits": null}') in text
    assert "8 epochs; the last 5 shown." in text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_image_gets_a_caption_and_no_img(tmp_path):
    path = write_report(
        tmp_path / "run",
        title="t",
        config={},
        metrics={},
        images={"absent": tmp_path / "nope.png"},
    )
    text = path.read_text(encoding="utf-8")
    assert "<img" not in text
    assert "absent (missing: nope.png)" in text


def test_format_value():
    assert format_value(-165.2391) == "-165.24"
    assert format_value(0.856) == "0.856"
    assert format_value(np.int64(7)) == "7"
    assert format_value(float("nan")) == "NaN"
    assert format_value(2.5e-6) == "2.500e-06"
    assert format_value("text") == "text"


def test_report_renders_in_a_real_browser(report, tmp_path):
    path, images = report
    screenshot = tmp_path / "report.png"
    expected = {name: format_value(value) for name, value in METRICS.items()}
    found = check_report_in_browser(
        path, list(images), screenshot=screenshot, expected_metrics=expected
    )
    assert len(found["images"]) == 3
    assert found["title"] == "Run <digits> & friends"
    assert "hidden_sizes" in found["config"] and "n_components" in found["config"]
    assert screenshot.stat().st_size > 0


def test_browser_check_catches_a_broken_image(tmp_path):
    """The helper must fail on an image that does not decode, not only pass on good ones."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    path = write_report(tmp_path, title="t", config={"a": 1}, metrics={"m": 1.0}, images={"x": bad})
    with pytest.raises(AssertionError, match="did not decode"):
        check_report_in_browser(path, 1)


@pytest.mark.parametrize("required", [False, True])
def test_without_chromium_the_check_skips_unless_required(required, report, monkeypatch):
    monkeypatch.setattr(browser, "chromium_path", lambda: None)
    if required:
        monkeypatch.setenv("VAEKIT_REQUIRE_BROWSER", "1")
    else:
        monkeypatch.delenv("VAEKIT_REQUIRE_BROWSER", raising=False)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="no chromium"):
        browser.check_report_in_browser(report[0], 3)
