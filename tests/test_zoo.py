"""The model zoo: each shipped model loads offline, matches its SHA256 and reproduces the check
figure on its card; a damaged file or an unknown name is refused in one sentence."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from ctrl_c import restore_ctrl_c

import vaekit
from vaekit import zoo
from vaekit.exceptions import ConfigError, ModelFileError

MODELS = zoo.pretrained_models()


def test_the_zoo_ships_the_models_the_readme_names():
    assert {"mnist-vae-50d", "mnist-vae-2d"} <= set(MODELS)
    for name, card in MODELS.items():
        assert card["name"] == name and set(card) == zoo.CARD_KEYS
        assert card["command"].startswith("vaekit train mnist ")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_pretrained_model_reproduces_its_check_figure(name):
    card = MODELS[name]
    model = vaekit.load_pretrained(name)
    X, y = zoo.pretrained_test_rows()
    assert X.shape == (1000, 784) and set(np.unique(X)) == {0.0, 1.0}
    assert np.bincount(y).min() > 50  # every digit is there
    check = card["check"]
    log_px = model.score_samples(X[: check["rows"]], check["importance_samples"])
    assert log_px.mean() == pytest.approx(check["log_likelihood"], abs=1e-4)
    # The check rows are a slice of the test set: their NLL is near the whole set's.
    assert abs(-log_px.mean() - card["test_nll"]["nats"]) < 10


def test_a_damaged_or_unknown_model_is_refused(tmp_path, monkeypatch):
    name = sorted(MODELS)[0]
    shutil.copytree(zoo._folder(), tmp_path / "pretrained")
    monkeypatch.setattr(zoo, "_folder", lambda: tmp_path / "pretrained")
    weights = tmp_path / "pretrained" / name / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert hashlib.sha256(data).hexdigest() != MODELS[name]["sha256"]["model.safetensors"]
    with pytest.raises(ModelFileError, match="does not match its SHA256"):
        vaekit.load_pretrained(name)
    with pytest.raises(ConfigError, match="There is no pretrained model 'mnist-vae-3d'"):
        vaekit.load_pretrained("mnist-vae-3d")


def test_the_zoo_page_example_runs_as_written():
    page = (Path(__file__).parents[1] / "docs" / "zoo.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/zoo.md", "exec"), namespace)
    assert namespace["digits"].shape == (16, 784)
    assert set(namespace["vae"].get_params()) == set(vaekit.VAE().get_params())


def test_the_zoo_model_is_the_m1_the_semi_supervised_page_shows():
    page = (Path(__file__).parents[1] / "docs" / "semi_supervised.md").read_text()
    [block] = [
        b for b in re.findall(r"```python\n(.*?)```", page, re.DOTALL) if "load_pretrained" in b
    ]
    namespace: dict = {}
    exec(compile(block, "docs/semi_supervised.md", "exec"), namespace)
    m1, stack = namespace["m1"], namespace["m1_m2"]
    assert stack.m1.estimator is m1 and m1.n_components == stack.n_components == 50


@pytest.mark.slow
def test_the_explorer_serves_a_pretrained_model_offline(tmp_path):
    """``vaekit explore --pretrained mnist-vae-2d --no-browser``: the shipped test images on the
    map, a click decodes a digit; Ctrl-C stops it. ``VAEKIT_ZOO_SCREENSHOT=docs/explorer.png``
    keeps the page's screenshot for the README."""
    from test_explore import VAEKIT, browsing, click_map, pick_two

    command = [str(VAEKIT), "explore", "--pretrained", "mnist-vae-2d", "--no-browser"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "VAEKIT_DATA": str(tmp_path)},  # no MNIST files: offline
        preexec_fn=restore_ctrl_c,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("explorer: http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[1]
        with urllib.request.urlopen(url + "api/state") as response:
            state = json.load(response)
        assert state["n_rows"] == 1000 and state["latent_dim"] == 2
        with browsing(url) as page:
            click_map(page, 0.3, 0.4)
            pick_two(page, (0.2, 0.3), (0.8, 0.7))
            screenshot = Path(os.environ.get("VAEKIT_ZOO_SCREENSHOT") or tmp_path / "shot.png")
            page.screenshot(path=str(screenshot), full_page=True)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
