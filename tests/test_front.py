"""The front a newcomer meets (issue 12): your own tables, data unlike the training data, the
shell's spellings and samplers, help that explains, quiet output when piped, RGBA images."""

import io
import json
import re

import numpy as np
import pytest
from test_cli import assert_clean_error, vaekit

import vaekit as vk
from vaekit.cli.parser import EXAMPLES, build_parser
from vaekit.engine.progress import EpochProgress
from vaekit.runs import open_run

SPECIES = np.array(["setosa", "versicolor", "virginica"])


def _write_table(path, rng, n=90):
    X = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5] + [5.0, 3.0, 1.0]
    labels = SPECIES[rng.integers(0, 3, n)]
    rows = [",".join(f"{v:.4f}" for v in x) + f",{name}" for x, name in zip(X, labels, strict=True)]
    path.write_text("\n".join(["sepal,petal,width,label", *rows]) + "\n")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    _write_table(folder / "iris.csv", np.random.default_rng(0))
    done = vaekit("train", "iris.csv", "--max-epochs", 3, "--out", "run", "--quiet", cwd=folder)
    return folder, done


def test_string_class_labels_are_coded_kept_and_shown(table_run):
    folder, done = table_run
    info = json.loads((folder / "run" / "run.json").read_text())
    assert info["data"]["label_names"] == list(SPECIES)
    assert "class labels by id: 0 = setosa, 1 = versicolor, 2 = virginica" in done.stdout
    vaekit("encode", "run", "--out", "codes.csv", cwd=folder)
    rows = (folder / "codes.csv").read_text().splitlines()
    assert rows[0] == "z1,z2,label"
    held_out = {row.rsplit(",", 1)[1] for row in rows[1:]}
    assert held_out <= set(SPECIES) and len(held_out) >= 2


def test_rows_written_to_csv_keep_the_tables_column_names(table_run):
    folder = table_run[0]
    vaekit("sample", "run", "-n", 5, "--out", "new.csv", cwd=folder)
    lines = (folder / "new.csv").read_text().splitlines()
    assert lines[0] == "sepal,petal,width" and len(lines) == 6
    vaekit("reconstruct", "run", "-n", 4, "--out", "recon.csv", cwd=folder)
    assert (folder / "recon.csv").read_text().splitlines()[0] == "sepal,petal,width"


def test_reconstruct_writes_the_originals_beside_the_reconstructions(table_run):
    folder = table_run[0]
    vaekit("reconstruct", "run", "-n", 4, "--with-originals", "--out", "both.csv", cwd=folder)
    lines = (folder / "both.csv").read_text().splitlines()
    assert lines[0] == (
        "row,sepal,petal,width,sepal_reconstructed,petal_reconstructed,width_reconstructed"
    )
    table = np.array([line.split(",") for line in lines[1:]], dtype=float)
    run = open_run(folder / "run")
    X, _, _ = run.load_data()
    np.testing.assert_array_equal(table[:, 0], np.arange(4))
    np.testing.assert_allclose(table[:, 1:4], X[:4], rtol=1e-5)
    np.testing.assert_allclose(table[:, 4:], run.estimator.reconstruct(X[:4]), rtol=1e-5)
    done = vaekit(
        "reconstruct", "run", "--with-originals", "--out", "both.png", cwd=folder, check=False
    )
    assert_clean_error(done, "--with-originals", ".csv")


def test_a_picture_of_a_table_is_refused_with_the_csv_form(table_run):
    done = vaekit("sample", "run", "--out", "grid.png", cwd=table_run[0], check=False)
    assert_clean_error(done, "not images", "--out grid.csv")


@pytest.mark.parametrize(
    ("shape", "out_shape"),
    [((50, 6, 5), (4, 6, 5)), ((50, 6, 5, 3), (4, 6, 5, 3)), ((50, 3, 6, 5), (4, 3, 6, 5))],
)
def test_image_arrays_give_image_shaped_npy_output(tmp_path, shape, out_shape):
    np.save(tmp_path / "images.npy", np.random.default_rng(1).random(shape).astype(np.float32))
    vaekit("train", "images.npy", "--max-epochs", 1, "--no-pictures", "--out", "run", "--quiet",
           cwd=tmp_path)  # fmt: skip
    vaekit("sample", "run", "-n", 4, "--out", "new.npy", cwd=tmp_path)
    assert np.load(tmp_path / "new.npy").shape == out_shape
    vaekit("reconstruct", "run", "-n", 4, "--out", "recon.npy", cwd=tmp_path)
    assert np.load(tmp_path / "recon.npy").shape == out_shape


def test_rgba_images_train_and_draw_their_pictures(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (40, 8, 8, 4)).astype(np.uint8)
    np.save(tmp_path / "rgba.npy", pixels)
    vaekit("train", "rgba.npy", "--max-epochs", 2, "--out", "run", "--quiet", cwd=tmp_path)
    for picture in ("samples.png", "reconstructions.png", "report.html"):
        assert (tmp_path / "run" / picture).is_file(), picture


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, digits):
    folder = tmp_path_factory.mktemp("shift")
    vaekit("train", "digits", "--max-epochs", 3, "--no-pictures", "--out", "run", "--quiet",
           cwd=folder)  # fmt: skip
    X, _ = digits
    np.save(folder / "raw.npy", X[:40])  # pixels 0..16, where the run was trained on [0, 1]
    np.save(folder / "scaled.npy", X[:40] / 16)
    return folder


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_data_unlike_the_training_data_are_flagged(digits_run, command):
    extra = ["--out", "s.csv"] if command == "score" else []
    args = [command, "run", "--samples", 5, *extra]
    raw = vaekit(*args, "--data", "raw.npy", cwd=digits_run)
    assert "vaekit: warning: raw.npy is unlike the data the model was trained on" in raw.stderr
    assert re.search(r"spans 0 to 1[0-6] here, 0 to 1 there", raw.stderr), raw.stderr
    scaled = vaekit(*args, "--data", "scaled.npy", cwd=digits_run)
    assert "warning" not in scaled.stderr


def test_sample_takes_the_gmm_sampler(digits_run):
    vaekit("sample", "run", "-n", 6, "--sampler", "gmm", "--seed", 3, "--out", "gmm.npy",
           cwd=digits_run)  # fmt: skip
    vaekit("sample", "run", "-n", 6, "--seed", 3, "--out", "prior.npy", cwd=digits_run)
    est = vk.load(digits_run / "run")
    expected = est.sample(6, sampler="gmm", random_state=3).reshape(6, 8, 8)
    np.testing.assert_allclose(np.load(digits_run / "gmm.npy"), expected, rtol=1e-6)
    assert not np.allclose(np.load(digits_run / "prior.npy"), expected)


def test_real_data_with_a_threshold_train_a_bernoulli_model(tmp_path):
    np.save(tmp_path / "real.npy", np.random.default_rng(4).normal(size=(40, 5)))
    vaekit("train", "real.npy", "--binarize", "0.5", "--max-epochs", 1, "--no-pictures",
           "--out", "run", "--quiet", cwd=tmp_path)  # fmt: skip
    params = json.loads((tmp_path / "run" / "run.json").read_text())["params"]
    assert params["likelihood"] == "bernoulli" and params["standardize"] is False


def test_a_misspelt_flag_suggests_the_closest_and_points_to_the_commands_help(tmp_path):
    done = vaekit("train", "digits", "--epochs", 3, cwd=tmp_path, check=False)
    assert_clean_error(done, "--epochs 3 (did you mean --max-epochs?)", "'vaekit train --help'")
    done = vaekit("evaluate", "run", "--sample-count", 3, cwd=tmp_path, check=False)
    assert_clean_error(done, "'vaekit evaluate --help'")


def _options(command: str) -> list:
    parser = build_parser()
    sub = parser.commands[command]
    return [a for a in sub._actions if a.dest != "help"]


@pytest.mark.parametrize("command", list(EXAMPLES))
def test_every_option_and_argument_explains_itself(command):
    for action in _options(command):
        assert action.help and len(action.help.split()) >= 3, (command, action.dest)
        if action.choices is not None and action.option_strings:
            metavar = action.metavar or "{" + ",".join(map(str, action.choices)) + "}"
            assert metavar.startswith("{"), (command, action.dest, metavar)


def test_choices_show_in_the_usage_line():
    done = vaekit("train", "--help")
    usage = " ".join(done.stdout.split("\n\n")[0].split())
    for shown in (
        "--architecture {mlp,linear,conv}",
        "--objective {elbo,iwae}",
        "--denoising {none,gaussian,masking}",
        "--sigma {fixed,shared,per_feature,decoder}",
        "--binarize {none,dynamic,fixed,THRESHOLD}",
    ):
        assert shown in usage, shown
    assert "default: 256,128" in " ".join(done.stdout.split())  # a default as the flag takes it


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _progress(stream, epochs: int, total: int = 1000) -> str:
    progress = EpochProgress(0, total, True, stream)
    for epoch in range(1, epochs + 1):
        progress.update({"epoch": epoch, "loss": 1.0 / epoch, "val_loss": 2.0})
    progress.close()
    return stream.getvalue()


def test_the_bar_ends_at_the_epochs_run_on_a_terminal():
    shown = _progress(_Terminal(), 7)
    assert shown.rstrip().endswith("]") and "7/7" in shown.split("\r")[-1]


def test_piped_progress_is_plain_lines():
    shown = _progress(io.StringIO(), 7)
    assert "\r" not in shown
    lines = shown.splitlines()
    assert lines[0].startswith("training: epoch 1/1000, loss 1")
    assert lines[-1].startswith("training: epoch 7/1000, loss 0.1429, validation loss 2")


def test_a_piped_train_prints_lines_and_says_1_epoch(tmp_path):
    done = vaekit("train", "digits", "--max-epochs", 1, "--no-pictures", "--out", "run",
                  cwd=tmp_path)  # fmt: skip
    assert "\r" not in done.stderr
    assert "training: epoch 1/1, loss" in done.stderr
    assert "trained vae on digits: 1 epoch\n" in done.stdout
    assert "stopped at max_epochs (1 epoch)" in done.stdout


def test_a_short_time_budget_is_said_in_seconds(tmp_path):
    done = vaekit("train", "digits", "--max-time", "1s", "--max-epochs", "none", "--no-pictures",
                  "--out", "run", "--quiet", cwd=tmp_path)  # fmt: skip
    spent = re.search(r"stopped when max_time ran out \((\d+\.\d) s of training\)", done.stdout)
    assert spent and float(spent.group(1)) >= 1.0  # seconds, not "0.0 min"; at least the budget
