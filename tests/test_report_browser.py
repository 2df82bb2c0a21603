"""report.html: its content as text, and the page as a real headless Chromium renders it.

``VAEKIT_REPORT_SCREENSHOT=docs/report.png`` keeps the screenshot of a real run's report (the
demo's 2-D VAE on digits) for the README.
"""

import html
import json
import os
import re
from pathlib import Path

import browser
import numpy as np
import pytest
from browser import check_report_in_browser
from PIL import Image

from vaekit import plots
from vaekit.runs import REQUEST_FILE, train_run
from vaekit.runs.metric_text import METRICS
from vaekit.runs.report import REPORT_FILE, format_value, write_report
from vaekit.runs.reproduce import train_command

METRICS_IN = {
    "n_examples": 450,
    "squared_error": 1.98,
    "5-NN accuracy": 0.856,
    "log_likelihood": -165.2391,
    "log_likelihood_sem": 0.853,
    "importance_samples": 100,
    "elbo": np.float64(-169.861),
    "elbo_sem": 0.997,
    "kl": 5.347,
    "kl_per_unit": [2.7, 2.65],
    "active_units": 2,
    "epochs": 12,
    "training_seconds": 3.5,
}
#: (words, value, unit) in the order a reader gets them; then the training facts.
ROWS = [
    (METRICS["log_likelihood"].words, "-165.24 ± 0.853 (K=100)", "nats per example"),
    (METRICS["elbo"].words, "-169.86 ± 0.997", "nats per example"),
    (METRICS["kl"].words, "5.35", "nats per example"),
    (METRICS["kl_per_unit"].words, "2.70, 2.65", "nats per example"),
    (METRICS["active_units"].words, "2 of 2", ""),
    (METRICS["squared_error"].words, "1.98", "data units² per example"),
    ("5-NN accuracy", "0.856", ""),
    ("epochs trained", "12", "epochs"),
    ("training time", "3.50", "seconds"),
]
CONFIG = {
    "Data": {"name": "digits <8x8>", "seed": 0},
    "Estimator parameters": {"hidden_sizes": [64, 32], "free_bits": None, "standardize": True},
}
COMMAND = "vaekit train '/data/a <b> & c.csv' --hidden-sizes 64,32"
HISTORY = [
    {"epoch": e + 1, "loss": 90.0 - e, "reconstruction": 80.0 - e, "kl": 10.0, "val_loss": 95.5}
    for e in range(8)
]
CAPTIONS = {
    "samples": "Draws z ~ p(z), decoded.",
    "latent space": "Posterior means <coloured> by label.",
    "training <curves> & more": "Loss per epoch; the dashed line marks the kept epoch.",
}

# What a reader sees, beyond browser.check_report_in_browser: each figure's title, sentence
# and where its caption sits, the tables' rows and group headings, the command.
_READ = """() => {
  const rows = sel => Array.from(document.querySelectorAll(sel + " tbody tr")).map(
    r => Array.from(r.children).map(c => c.textContent));
  return {
    figures: Array.from(document.querySelectorAll("figure")).map(f => ({
      title: f.querySelector(".figure-title").textContent,
      text: f.querySelector(".figure-text") ? f.querySelector(".figure-text").textContent : null,
      imageBottom: f.querySelector("img").getBoundingClientRect().bottom,
      captionTop: f.querySelector("figcaption").getBoundingClientRect().top,
      captionVisible: f.querySelector("figcaption").getBoundingClientRect().height > 0})),
    metrics: rows("#metrics"),
    config: rows("#config"),
    command: document.querySelector("#command") ? document.querySelector("#command").innerText
                                                : null,
    text: document.body.innerText,
  };
}"""


def read_page(path: Path) -> dict:
    """Open ``path`` in headless Chromium (after check_report_in_browser has found one)."""
    with browser.headless_page() as page:
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        return page.evaluate(_READ)


def _pictures(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    images = rng.random((16, 64))
    return {
        "samples": plots.image_grid(images, (1, 8, 8), folder / "samples.png"),
        "latent space": plots.latent_scatter(
            rng.normal(size=(50, 2)), folder / "latent.png", labels=rng.integers(0, 3, 50)
        ),
        "training <curves> & more": plots.training_curves(
            HISTORY, folder / "curves.png", best_epoch=5, stopped_early=True
        ),
    }


@pytest.fixture
def report(tmp_path) -> tuple[Path, dict[str, Path]]:
    images = _pictures(tmp_path)
    path = write_report(
        tmp_path,
        title="Run <digits> & friends",
        metrics=METRICS_IN,
        config=CONFIG,
        held_out=450,
        training={"stopped_by": "early_stopping", "best_epoch": 8, "patience": 4},
        command=COMMAND,
        history=HISTORY,
        images=images,
        captions=CAPTIONS,
        notes="Trained on 1437 digits.\nSecond line <b>not bold</b>.",
    )
    return path, images


METRIC_ROW = re.compile(r"<tr><th scope=row>(.*?)</th><td[^>]*>(.*?)</td><td[^>]*>(.*?)</td>")


def _metric_rows(text: str) -> list[tuple[str, ...]]:
    return [tuple(html.unescape(cell) for cell in row) for row in METRIC_ROW.findall(text)]


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
    titles = re.findall(r'<span class="figure-title">(.*?)</span>', text)
    assert titles == [html.escape(k) for k in images]  # in the dict's order, escaped
    assert f'<pre id="command"><code>{html.escape(COMMAND)}</code></pre>' in text
    assert "8 epochs; the last 5 shown." in text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_metrics_are_words_with_units_in_reading_order_and_marked_held_out(report):
    text = report[0].read_text(encoding="utf-8")
    assert _metric_rows(text) == ROWS
    groups = re.findall(r'<tr class="group"><th colspan="3" scope="rowgroup">(.*?)</th>', text)
    assert groups == [
        "Held-out: measured on the 450 held-out rows, which training never saw",
        "Training",
    ]
    assert "standard error of the mean over the held-out rows" in text
    for qualifier in ("log_likelihood_sem", "importance_samples", "n_examples", "elbo_sem"):
        assert qualifier not in text  # shown inside other rows, never on their own


def test_the_configuration_is_a_table_of_readable_values(report):
    text = report[0].read_text(encoding="utf-8")
    rows = re.findall(r"<tr><th scope=row><code>(.*?)</code></th><td>(.*?)</td></tr>", text)
    assert rows == [
        ("name", "digits &lt;8x8&gt;"),
        ("seed", "0"),
        ("hidden_sizes", "64, 32"),
        ("free_bits", "none"),
        ("standardize", "yes"),
    ]
    assert '<th colspan="2" scope="rowgroup">Estimator parameters</th>' in text


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
    assert '<span class="figure-title">absent</span> (missing: nope.png)' in text


def test_format_value():
    assert format_value(-165.2391) == "-165.24"
    assert format_value(0.856) == "0.856"
    assert format_value(np.int64(7)) == "7"
    assert format_value(float("nan")) == "NaN"
    assert format_value(2.5e-6) == "2.500e-06"
    assert format_value("text") == "text"


def _check_figures(page: dict, captions: dict[str, str]) -> None:
    """Every figure has its title and sentence, visible, under its picture."""
    assert [(f["title"], f["text"]) for f in page["figures"]] == list(captions.items())
    for figure in page["figures"]:
        assert figure["captionVisible"] and figure["captionTop"] >= figure["imageBottom"]


def test_report_renders_in_a_real_browser(report, tmp_path):
    path, images = report
    screenshot = tmp_path / "report.png"
    found = check_report_in_browser(path, len(images), screenshot=screenshot)
    assert [img["alt"] for img in found["images"]] == list(images)
    assert found["title"] == "Run <digits> & friends"
    page = read_page(path)
    _check_figures(page, CAPTIONS)
    assert [tuple(row) for row in page["metrics"] if len(row) == 3] == ROWS
    assert page["metrics"][0] == [
        "Held-out: measured on the 450 held-out rows, which training never saw"
    ]
    assert ["free_bits", "none"] in page["config"] and ["Estimator parameters"] in page["config"]
    assert page["command"] == COMMAND
    assert (
        "Training stopped early at epoch 12: no better validation loss for 4 epochs"
        in (page["text"])
    )
    assert screenshot.stat().st_size > 0


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo's 2-D VAE on digits, trained until early stopping."""
    out = tmp_path_factory.mktemp("demo") / "vae"
    params = {"n_components": 2, "learning_rate": 3e-3}
    return train_run("digits", params=params, out=out, verbose=False)


@pytest.mark.slow
def test_a_run_report_reads_well_in_a_real_browser(demo_run, tmp_path):
    """A real run's page: captions under every figure, the held-out metrics in words, the
    training facts, the configuration and the command. Its screenshot is docs/report.png."""
    path, info = demo_run.folder / REPORT_FILE, demo_run.info
    screenshot = Path(os.environ.get("VAEKIT_REPORT_SCREENSHOT") or tmp_path / "report.png")
    found = check_report_in_browser(path, 7, screenshot=screenshot)
    page = read_page(path)
    titles = [img["alt"] for img in found["images"]]
    assert titles == [f["title"] for f in page["figures"]]
    assert all(f["text"] and f["captionTop"] >= f["imageBottom"] for f in page["figures"])
    assert "The posterior means of the 450 held-out rows, coloured by label." in (
        f["text"] for f in page["figures"]
    )
    n_test = info["data"]["n_test"]
    assert page["metrics"][0] == [
        f"Held-out: measured on the {n_test} held-out rows, which training never saw"
    ]
    words = [row[0] for row in page["metrics"] if len(row) == 3]
    assert words[:3] == [METRICS[k].words for k in ("log_likelihood", "elbo", "reconstruction_nll")]
    shown = {row[0]: (row[1], row[2]) for row in page["metrics"] if len(row) == 3}
    assert shown[METRICS["active_units"].words] == ("2 of 2", "")
    assert shown[METRICS["log_likelihood"].words][1] == "nats per example"
    assert "(K=100)" in shown[METRICS["log_likelihood"].words][0]
    assert f"kept the weights of epoch {info['training']['best_epoch']}" in page["text"]
    request = json.loads((demo_run.folder / REQUEST_FILE).read_text())
    assert page["command"] == train_command(request)
    assert page["command"] == "vaekit train digits --n-components 2 --learning-rate 0.003"
    assert ["rows", f"{info['data']['n_train']} for training, {n_test} held out"] in page["config"]
    assert ["hidden_sizes", "256, 128"] in page["config"]
    assert Image.open(screenshot).size[1] > 2000


def test_browser_check_catches_a_broken_image(tmp_path):
    """The helper must fail on an image that does not decode, not only pass on good ones."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    path = write_report(
        tmp_path, title="t", config={"c": {"a": 1}}, metrics={"m": 1.0}, images={"x": bad}
    )
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
