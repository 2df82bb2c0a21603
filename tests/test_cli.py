"""The ``vaekit`` command end to end, in subprocesses, on digits and on small files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from browser import check_report_in_browser
from PIL import Image

from vaekit.runs.metric_text import METRICS

VAEKIT = Path(sys.executable).parent / "vaekit"
COMMANDS = [
    "train",
    "evaluate",
    "sample",
    "reconstruct",
    "encode",
    "interpolate",
    "traverse",
    "score",
    "report",
    "export",
    "demo",
]


def vaekit(*args, cwd=None, check=True):
    """Run the installed command; returns the CompletedProcess."""
    env = {**os.environ, "VAEKIT_DATA": str(Path(cwd or ".").resolve() / "no-data-here")}
    done = subprocess.run(
        [str(VAEKIT), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"vaekit {' '.join(map(str, args))} failed:\n{done.stderr}")
    return done


def assert_clean_error(done, *words):
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vaekit: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "run"
    done = vaekit("train", "digits", "--max-epochs", 8, "--out", folder, "--quiet")
    assert f"run folder: {folder}" in done.stdout
    return folder


def test_train_writes_a_complete_run_folder(run):
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.jsonl", "run.json", "report.html"} <= names
    for picture in ("samples", "reconstructions", "latent", "manifold", "interpolation", "curves"):
        assert Image.open(run / f"{picture}.png").size[0] > 100
    info = json.loads((run / "run.json").read_text())
    assert info["params"]["n_components"] == 2 and info["data"]["n_test"] == 450
    assert len((run / "metrics.jsonl").read_text().splitlines()) == info["epochs"] == 8
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".")]  # no staging left


VAE_CAPTIONS = ["samples", "reconstructions", "latent space", "manifold", "interpolations"]
VAE_CAPTIONS += ["latent traversals", "training curves"]


def test_the_run_report_renders_in_a_real_browser(run, tmp_path):
    metrics = json.loads((run / "run.json").read_text())["metrics"]
    words = [METRICS[name].words for name in metrics if name in METRICS and name != "n_examples"]
    found = check_report_in_browser(
        run / "report.html", VAE_CAPTIONS, tmp_path / "r.png", expected_metrics=words
    )
    assert "n_components" in found["config"]
    assert Image.open(tmp_path / "r.png").size[1] > 1000


def test_sample_encode_evaluate_score_round_trip(run, tmp_path):
    vaekit("sample", run, "-n", 10, "--out", tmp_path / "s.npy")
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (10, 8, 8)  # images come out image-shaped
    vaekit("sample", run, "-n", 16, "--out", tmp_path / "s.png")
    assert Image.open(tmp_path / "s.png").size[0] > 50

    vaekit("encode", run, "--out", tmp_path / "z.csv")
    lines = (tmp_path / "z.csv").read_text().splitlines()
    assert lines[0] == "z1,z2,label" and len(lines) == 451
    vaekit("encode", run, "--out", tmp_path / "z.npy")
    Z = np.load(tmp_path / "z.npy")
    np.testing.assert_allclose(
        Z, np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1)[:, :2], rtol=1e-5
    )

    done = vaekit("evaluate", run, "--samples", 50, "--json", tmp_path / "m.json")
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert "log p(x), nats/example" in done.stdout and metrics["n_examples"] == 450
    assert metrics["log_likelihood"] > metrics["elbo"]
    assert metrics["bits_per_dim"] == pytest.approx(-metrics["log_likelihood"] / (64 * np.log(2)))
    vaekit("evaluate", run, "--samples", 50, "--precision", "fp32", "--json", tmp_path / "f.json")
    fast = json.loads((tmp_path / "f.json").read_text())["log_likelihood"]
    assert fast != metrics["log_likelihood"]  # the networks ran in float32 ...
    assert fast == pytest.approx(metrics["log_likelihood"], abs=0.01)  # ... on the same draws

    vaekit("score", run, "--samples", 50, "--contamination", 0.2, "--out", tmp_path / "s.csv")
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "row,log_likelihood,decision,prediction,label"
    table = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    assert table.shape == (450, 5)
    assert table[:, 1].mean() == pytest.approx(metrics["log_likelihood"], abs=1e-6)
    # The offset is the 20% quantile of these same held-out rows.
    assert (table[:, 3] == -1).mean() == pytest.approx(0.2, abs=1 / 450)
    assert np.array_equal(table[:, 3] == -1, table[:, 2] < 0)


def test_picture_commands(run, tmp_path):
    for command, extra in (
        ("reconstruct", ["-n", 8]),
        ("interpolate", ["--pairs", 3, "--steps", 7]),
        ("traverse", ["--steps", 5]),
    ):
        out = tmp_path / f"{command}.png"
        vaekit(command, run, *extra, "--out", out)
        assert Image.open(out).size[0] > 50
    (run / "report.html").unlink()
    vaekit("report", run)
    assert (run / "report.html").stat().st_size > 10_000


def test_train_from_a_toml_config_and_flags_override_it(tmp_path):
    config = tmp_path / "vae.toml"
    config.write_text(
        'data = "digits"\nmodel = "autoencoder"\nn_components = 3\nhidden_sizes = [32, 16]\n'
        "max_epochs = 2\n"
    )
    vaekit("train", "--config", config, "--n-components", 4, "--out", tmp_path / "r", "--quiet")
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["model"] == "autoencoder" and info["params"]["n_components"] == 4
    assert info["params"]["hidden_sizes"] == [32, 16]
    done = vaekit("sample", tmp_path / "r", "--out", tmp_path / "x.png", check=False)
    assert_clean_error(done, "autoencoder")
    vaekit("score", tmp_path / "r", "--out", tmp_path / "e.csv")
    assert (
        (tmp_path / "e.csv").read_text().startswith("row,reconstruction,decision,prediction,label")
    )
    done = vaekit(
        "score", tmp_path / "r", "--score-type", "elbo", "--out", tmp_path / "f.csv", check=False
    )
    assert_clean_error(done, "--score-type elbo needs a vae run", "--score-type reconstruction")


def test_tabular_csv_is_standardised_and_scored(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * [1, 10, 100, 1000, 0.1] + 50
    path = tmp_path / "table.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c,d,e", comments="")
    vaekit("train", "table.csv", "--max-epochs", 3, "--out", "r", "--quiet", cwd=tmp_path)
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["params"]["standardize"] is True and info["data"]["n_test"] == 20
    assert info["data"]["source"] == str(path)  # absolute: the run works from any folder
    vaekit("evaluate", tmp_path / "r", "--samples", 5)
    vaekit("score", tmp_path / "r", "--data", path, "--samples", 20, "--out", tmp_path / "s.csv")
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1).shape == (200, 4)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    done = vaekit(command, "--help")
    assert "example:" in done.stdout and "vaekit " + command in done.stdout


def _bad_inputs(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "nan.csv").write_text("1,2\n3,nan\n5,6\n")
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    return {
        "missing file": (["train", tmp_path / "nope.npy"], ["nope"]),
        "empty file": (["train", tmp_path / "empty.csv"], ["empty"]),
        "wrong shape": (["train", tmp_path / "flat.npy"], ["flat.npy"]),
        "NaN values": (["train", tmp_path / "nan.csv"], ["NaN"]),
        "unknown dataset": (["train", "imagenet"], ["Unknown dataset"]),
        "unknown likelihood": (["train", "digits", "--likelihood", "laplace"], ["laplace"]),
        "bad parameter": (["train", "digits", "--n-components", 0], ["n_components"]),
        "mnist offline": (
            ["train", "mnist", "--data-dir", tmp_path],
            ["train-images-idx3-ubyte.gz"],
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "empty file",
        "wrong shape",
        "NaN values",
        "unknown dataset",
        "unknown likelihood",
        "bad parameter",
        "mnist offline",
    ],
)
def test_bad_training_input_gives_one_line_and_writes_nothing(case, tmp_path):
    args, words = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    done = vaekit(*args, "--out", out, "--quiet", cwd=tmp_path, check=False)
    assert_clean_error(done, *words)
    assert not out.exists() and not (tmp_path / "runs").exists()
    assert not (tmp_path / "out.partial").exists()


def test_a_corrupt_model_folder_is_refused(run, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "run.json", "metrics.jsonl"):
        (broken / name).write_bytes((run / name).read_bytes())
    (broken / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes()[:100])
    out = tmp_path / "z.csv"
    assert_clean_error(vaekit("encode", broken, "--out", out, check=False), "SHA256")
    assert_clean_error(vaekit("evaluate", tmp_path, check=False), "run.json")
    assert not out.exists()


def test_outputs_are_checked_before_work(run, tmp_path):
    assert_clean_error(
        vaekit("encode", run, "--out", tmp_path / "z.txt", check=False), ".npy or .csv"
    )
    done = vaekit("sample", run, "--out", tmp_path / "missing" / "s.png", check=False)
    assert_clean_error(done, "does not exist")
    assert vaekit("train", "digits", "--out", run, check=False).returncode == 2


def test_an_unknown_flag_is_a_usage_error():
    done = vaekit("train", "digits", "--no-such-flag", check=False)
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_writes_two_reports_that_render(tmp_path):
    """``make demo``'s command: both reports render."""
    done = vaekit("demo", "--out", tmp_path / "demo", "--quiet")
    for model in ("vae", "autoencoder"):
        assert f"report: {tmp_path / 'demo' / model / 'report.html'}" in done.stdout
    check_report_in_browser(
        tmp_path / "demo" / "vae" / "report.html", VAE_CAPTIONS, tmp_path / "report.png"
    )
    ae_captions = ["reconstructions", "latent space", "interpolations", "training curves"]
    check_report_in_browser(tmp_path / "demo" / "autoencoder" / "report.html", ae_captions)


def test_data_of_the_wrong_width_for_a_run_is_refused(run, tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((5, 10)))
    done = vaekit(
        "score", run, "--data", tmp_path / "wide.npy", "--out", tmp_path / "s.csv", check=False
    )
    assert_clean_error(done, "wide.npy has 10 features per row", "trained on 64")
    assert "AnomalyDetector" not in done.stderr  # the command's words, not a class's
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["sample", "-n", "0"],
        ["traverse", "--steps", "0"],
        ["interpolate", "--pairs", "-1"],
        ["evaluate", "--samples", "0"],
        ["score", "--samples", "x"],
    ],
)
def test_counts_must_be_positive(run, args):
    done = vaekit(args[0], run, *args[1:], check=False)
    assert done.returncode == 2 and "expected a positive integer" in done.stderr


def test_compare_writes_tables_and_a_plot(tmp_path):
    out = tmp_path / "cmp"
    done = vaekit("compare", "digits", "--max-epochs", 3, "--samples", 20, "--out", out)
    assert "| VAE |" in done.stdout and "| FactorAnalysis |" in done.stdout
    assert (out / "comparison.csv").read_text().count("\n") == 5
    assert Image.open(out / "comparison.png").size[0] > 200
