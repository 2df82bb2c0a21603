"""ONNX export: the graphs against PyTorch at another batch size, model.json, the command, the
refusals, and the docs' example."""

import copy
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import expit

import vaekit
from vaekit.exceptions import ConfigError
from vaekit.model.likelihoods import make_likelihood

ort = pytest.importorskip("onnxruntime")

DOCS = Path(__file__).parents[1] / "docs" / "export.md"
TINY = dict(n_components=2, max_epochs=2, verbose=False, random_state=0)
MODELS = {
    "mlp": lambda: vaekit.VAE(
        hidden_sizes=(16,), sigma="decoder", standardize=True, missing="ignore", **TINY
    ),
    "conv": lambda: vaekit.VAE(architecture="conv", image_shape=(8, 8), channels=(4, 8), **TINY),
    "linear": lambda: vaekit.VAE(
        architecture="linear",
        likelihood="zinb",
        dispersion="decoder",
        library_size=True,
        **TINY,
    ),
    "conditional": lambda: vaekit.VAE(
        hidden_sizes=(16,), condition="label", likelihood="bernoulli", binarize=4.0, **TINY
    ),
    "autoencoder": lambda: vaekit.Autoencoder(hidden_sizes=(16,), **TINY),
}
ROWS = 11  # neither the batch the graphs were traced with (3) nor the one checked (5)
MATH = {"exp": np.exp, "sigmoid": expit, "tanh": np.tanh}  # what model.json's data_mean uses
FILES = ["decoder.onnx", "encoder.onnx", "model.json"]


def sessions(folder):
    """onnxruntime's sessions of the exported encoder and decoder."""
    return tuple(
        ort.InferenceSession(str(folder / f"{part}.onnx")) for part in ("encoder", "decoder")
    )


def one_hot(estimator, y):
    """The encoded conditions the graphs take, or no input for an unconditional model."""
    if getattr(estimator, "condition", None) is None:
        return {}
    index = np.searchsorted(estimator.classes_, y)
    return {"condition": np.eye(len(estimator.classes_), dtype=np.float32)[index]}


@pytest.fixture(scope="module", params=list(MODELS))
def exported(request, digits, tmp_path_factory):
    """(name, estimator, folder, X, y): a model fitted for two epochs on 150 digits (their
    labels the conditions of the conditional one) and exported."""
    X, y = digits[0][:150], digits[1][:150]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs: the warnings about them are expected
        estimator = MODELS[request.param]().fit(X, y)
    folder = vaekit.export_onnx(estimator, tmp_path_factory.mktemp(request.param) / "onnx")
    return request.param, estimator, folder, X, y


def test_the_graphs_agree_with_pytorch_at_another_batch_size(exported):
    _, estimator, folder, X, y = exported
    X, y = X[-ROWS:].copy(), y[-ROWS:]
    if getattr(estimator, "missing", None) == "ignore":
        X[::3, 5::7] = np.nan  # missing values: the graph reads them as the module does
    encoder, decoder = sessions(folder)
    outputs = encoder.run(None, {"x": X, **one_hot(estimator, y)})
    if isinstance(estimator, vaekit.VAE):
        mean, variance = estimator.posterior(X, y)
        assert np.abs(outputs[0] - mean).max() <= 1e-5
        assert np.abs(outputs[1] - np.log(variance)).max() <= 1e-5
    else:
        assert np.abs(outputs[0] - estimator.transform(X)).max() <= 1e-5
    z = outputs[0]
    params = decoder.run(None, {"z": z, **one_hot(estimator, y)})
    names = [output.name for output in decoder.get_outputs()]
    expected = reference_params(estimator, z, one_hot(estimator, y).get("condition"))
    assert names == list(expected)
    for got, want in zip(params, expected.values(), strict=True):
        assert got.shape == (ROWS, estimator.n_features_in_)
        assert np.abs(got - want).max() <= 1e-5
    # model.json's recipe turns the parameters into the data's mean, as inverse_transform does
    recipe = json.loads((folder / "model.json").read_text())["likelihood"]["data_mean"]
    data_mean = eval(recipe, MATH, dict(zip(names, params, strict=True)))
    assert np.abs(data_mean - estimator.inverse_transform(z, y)).max() <= 1e-5


def reference_params(estimator, z, condition):
    """The likelihood's parameters from the PyTorch module in float64, in the data's units."""
    module = copy.deepcopy(estimator.module_).double()
    with torch.no_grad():
        c = None if condition is None else torch.from_numpy(condition).double()
        raw = module.decode(torch.from_numpy(z).double(), c)
        params = {k: v.numpy() for k, v in module.likelihood.distribution_params(raw).items()}
    if estimator.standardize:
        params["mean"] = params["mean"] * estimator.scale_ + estimator.mean_
        params["sigma"] = params["sigma"] * estimator.scale_
    return params


EXPECTED = {
    "mlp": ("gaussian", ["mean", "log_var"], ["mean", "sigma"], None),
    "conv": ("gaussian", ["mean", "log_var"], ["mean", "sigma"], [1, 8, 8]),
    "linear": ("zinb", ["mean", "log_var"], ["log_mean", "log_theta", "zero_logits"], None),
    "conditional": ("bernoulli", ["mean", "log_var"], ["logits"], None),
    "autoencoder": ("gaussian", ["code"], ["mean", "sigma"], None),
}


def test_model_json_describes_the_graphs(exported):
    name, estimator, folder, X, _ = exported
    info = json.loads((folder / "model.json").read_text())
    likelihood, encoder_out, decoder_out, image_shape = EXPECTED[name]
    assert sorted(p.name for p in folder.iterdir()) == FILES
    assert info["format"] == "vaekit-onnx" and info["format_version"] == 1
    assert info["vaekit_version"] == vaekit.__version__ and info["dtype"] == "float32"
    assert (info["n_features"], info["n_components"], info["image_shape"]) == (64, 2, image_shape)
    assert info["likelihood"]["name"] == likelihood
    assert info["likelihood"]["outputs"] == decoder_out
    conditional = getattr(estimator, "condition", None) is not None
    extra = [("condition", 10)] if conditional else []
    for part, inputs, outputs in (
        ("encoder", [("x", 64), *extra], [(name, 2) for name in encoder_out]),
        ("decoder", [("z", 2), *extra], [(name, 64) for name in decoder_out]),
    ):
        session = ort.InferenceSession(str(folder / info[part]["file"]))
        described = info[part]
        for listed, actual, wanted in (
            (described["inputs"], session.get_inputs(), inputs),
            (described["outputs"], session.get_outputs(), outputs),
        ):
            assert [(t["name"], t["shape"]) for t in listed] == [
                (name, ["batch", width]) for name, width in wanted
            ]
            assert [(t.name, t.shape) for t in actual] == [
                (name, ["batch", width]) for name, width in wanted
            ]
    preprocessing = info["preprocessing"]
    assert preprocessing["in_graph"] is True
    if estimator.standardize:
        np.testing.assert_allclose(preprocessing["standardize"]["mean"], X.mean(0), atol=1e-4)
        assert "NaN marks a missing value" in preprocessing["input"]
    else:
        assert preprocessing["standardize"] is None
    assert preprocessing["binarize_threshold"] == (4.0 if conditional else None)
    assert info["condition"] == (
        {"kind": "label", "classes": list(range(10))} if conditional else None
    )
    if likelihood == "zinb":
        library = info["likelihood"]["library"]
        assert library["log_total_mean"] == pytest.approx(np.log(X.sum(1)).mean(), rel=1e-6)
        assert info["likelihood"]["parameters"] == {"dispersion": "decoder", "library_size": True}
    if isinstance(estimator, vaekit.VAE):
        assert info["latent"]["prior"] == "standard_normal"
        assert info["latent"]["sample"].startswith("z ~ N(0, I)")
    else:
        assert info["latent"]["prior"] is None


LIKELIHOODS = [
    ("bernoulli", {}),
    ("continuous_bernoulli", {}),
    ("gaussian", {"sigma": "fixed", "sigma_value": 0.5}),
    ("gaussian", {"sigma": "shared"}),
    ("gaussian", {"sigma": "per_feature"}),
    ("gaussian", {"sigma": "decoder"}),
    ("poisson", {}),
    ("poisson", {"library_size": True}),
    ("negative_binomial", {"dispersion": "feature"}),
    ("negative_binomial", {"dispersion": "decoder"}),
    ("zinb", {"dispersion": "decoder", "library_size": True}),
]


@pytest.mark.parametrize(("name", "options"), LIKELIHOODS, ids=lambda v: str(v))
def test_every_likelihood_names_its_parameters_and_how_they_give_the_mean(name, options):
    likelihood = make_likelihood(name, 5, **options).double()
    params = torch.randn(4, likelihood.n_heads * 5, generator=torch.Generator().manual_seed(0))
    named = likelihood.distribution_params(params.double())
    assert all(tuple(v.shape) == (4, 5) for v in named.values())
    values = {k: v.detach().numpy() for k, v in named.items()}
    mean = eval(likelihood.mean_formula, MATH, values)
    np.testing.assert_allclose(mean, likelihood.mean(params.double()).detach().numpy(), rtol=1e-12)
    if name == "gaussian":
        sigma = likelihood.sigma(params.double()).detach().numpy()
        np.testing.assert_array_equal(values["sigma"], np.broadcast_to(sigma, (4, 5)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder trained for two epochs on 40 rows of six features."""
    from vaekit.runs import train_run

    base = tmp_path_factory.mktemp("export-run")
    np.save(base / "rows.npy", np.random.default_rng(0).random((40, 6)).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_run(str(base / "rows.npy"), out=base / "run", params={"max_epochs": 2},
                  pictures=False, verbose=False)  # fmt: skip
    return base / "run"


def vaekit_command(*args):
    return subprocess.run(
        [sys.executable, "-m", "vaekit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_command_exports_a_run_and_refuses_to_overwrite(run):
    done = vaekit_command("export", run, "--format", "onnx")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote encoder.onnx, decoder.onnx and model.json to {run / 'onnx'}\n"
    assert done.stderr == ""  # torch.onnx's log lines and warnings are kept from the user
    X = np.random.default_rng(1).random((7, 6)).astype(np.float32)
    encoder, _ = sessions(run / "onnx")
    mean, _ = encoder.run(None, {"x": X})
    assert np.abs(mean - vaekit.load(run).transform(X)).max() <= 1e-5
    again = vaekit_command("export", run)
    assert again.returncode == 2 and again.stderr == (
        f"vaekit: error: {run / 'onnx'} already exists; choose another --out or pass --overwrite.\n"
    )
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_folder_is_replaced_only_when_asked_and_whole(run, tmp_path):
    out = tmp_path / "deep" / "onnx"
    out.mkdir(parents=True)
    (out / "old.txt").write_text("kept")
    with pytest.raises(ConfigError, match="already exists; choose another out_dir or pass"):
        vaekit.export_onnx(run, out)
    assert vaekit.export_onnx(run, out, overwrite=True) == out  # a run folder, loaded
    assert sorted(p.name for p in out.iterdir()) == FILES
    assert out.stat().st_mode & 0o777 == out.parent.stat().st_mode & 0o777  # not mkdtemp's 0700
    assert [p.name for p in out.parent.iterdir()] == ["onnx"]


def test_a_failed_export_leaves_the_old_folder_as_it_was(run, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("Cannot trace this.\nA long explanation follows.")

    monkeypatch.setattr(torch.onnx, "export", fail)
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "old.txt").write_text("kept")
    with pytest.raises(ConfigError) as caught:
        vaekit.export_onnx(run, out, overwrite=True)
    assert str(caught.value) == "The encoder could not be exported to ONNX: Cannot trace this."
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]
    assert [p.name for p in out.iterdir()] == ["old.txt"]


def test_what_cannot_be_exported_is_refused_in_one_sentence(digits, tmp_path, monkeypatch):
    X, y = digits[0][:60], digits[1][:60].copy()
    y[20:] = -1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m2 = vaekit.SemiSupervisedVAE(hidden_sizes=(8,), max_epochs=1, verbose=False).fit(X, y)
    with pytest.raises(ConfigError, match=r"^A SemiSupervisedVAE cannot be exported to ONNX: "):
        vaekit.export_onnx(m2, tmp_path / "m2")
    with pytest.raises(ConfigError, match="or a folder saved from one; got AnomalyDetector."):
        vaekit.export_onnx(vaekit.AnomalyDetector(), tmp_path / "detector")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # the extra is not installed
    with pytest.raises(ConfigError, match=re.escape("pip install 'vaekit[onnx]'.")):
        vaekit.export_onnx(m2, tmp_path / "m2")
    assert list(tmp_path.iterdir()) == []


def test_the_docs_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = DOCS.read_text()
    assert "max_epochs=30," in text
    text = text.replace("max_epochs=30,", "max_epochs=2,")  # the same calls, trained less
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        exec(compile(block, str(DOCS), "exec"), namespace)
    vae, z, X = namespace["vae"], namespace["z"], namespace["X"]
    assert np.abs(namespace["mean"] - vae.inverse_transform(z)).max() <= 1e-5
    assert namespace["images"].shape == (16, 8, 8)
    assert np.abs(namespace["codes"] - vae.transform(X[:5])).max() <= 1e-5
