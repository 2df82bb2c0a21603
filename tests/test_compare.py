"""vaekit.compare: four models, one latent size, held-out numbers that can be checked."""

import copy
import csv
import io

import numpy as np
import pytest
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Binarizer, MinMaxScaler, StandardScaler
from test_cli import assert_clean_error, vaekit

from vaekit import VAE
from vaekit.compare import (
    BernoulliDraw,
    compare,
    default_models,
    describe_preprocessing,
    to_markdown,
    write_csv,
)
from vaekit.data import load_dataset
from vaekit.exceptions import ConfigError
from vaekit.plots import _comparison_figure, comparison_bars
from vaekit.runs import held_out

FAST = dict(max_epochs=5, learning_rate=3e-3)


@pytest.fixture(scope="module")
def rows(digits):
    X, y = digits
    X = X / 16 + np.random.default_rng(0).normal(0, 0.05, X.shape)  # no constant pixel
    models = default_models(2, random_state=0, **FAST)
    return compare(X[:1200], X[1200:], y[:1200], y[1200:], models=models, n_samples=50), X


@pytest.fixture(scope="module")
def table(digits):
    """Real values whose features differ in scale by 10^4: standardising them matters."""
    X, y = digits
    noisy = X / 16 + np.random.default_rng(0).normal(0, 0.05, X.shape)
    return noisy * np.logspace(-2, 2, X.shape[1]) + 3, y


@pytest.fixture(scope="module")
def standardised(table):
    X, y = table
    models = default_models(2, random_state=0, standardize=True, **FAST)
    return compare(X[:1200], X[1200:], y[:1200], y[1200:], models=models, n_samples=50)


def test_compare_reports_each_models_numbers(rows):
    rows, X = rows
    by_name = {r["model"]: r for r in rows}
    assert list(by_name) == ["VAE", "Autoencoder", "PCA", "FactorAnalysis"]
    pca = PCA(2, random_state=0).fit(X[:1200])
    assert by_name["PCA"]["log_likelihood"] == pytest.approx(pca.score(X[1200:]))
    recon = pca.inverse_transform(pca.transform(X[1200:]))
    assert by_name["PCA"]["squared_error"] == pytest.approx(((recon - X[1200:]) ** 2).sum(1).mean())
    fa = FactorAnalysis(2, random_state=0).fit(X[:1200])
    assert by_name["FactorAnalysis"]["log_likelihood"] == pytest.approx(fa.score(X[1200:]))
    assert by_name["Autoencoder"]["log_likelihood"] is None
    assert all(0.1 < r["knn_accuracy"] <= 1 for r in rows)
    assert all(r["note"] is None for r in rows)


@pytest.mark.parametrize("name, model", [("PCA", PCA), ("FactorAnalysis", FactorAnalysis)])
def test_baselines_see_the_standardised_input_and_report_original_units(
    table, standardised, name, model
):
    X, _ = table
    row = {r["model"]: r for r in standardised}[name]
    pipe = make_pipeline(StandardScaler(), model(2, random_state=0)).fit(X[:1200])
    scaler, core = pipe[0], pipe[-1]
    log_jacobian = -np.log(scaler.scale_).sum()
    assert row["log_likelihood"] == pytest.approx(pipe.score(X[1200:]) + log_jacobian, abs=1e-6)
    codes = core.transform(scaler.transform(X[1200:]))
    decoded = core.inverse_transform(codes) if name == "PCA" else codes @ core.components_
    decoded = decoded if name == "PCA" else decoded + core.mean_
    error = scaler.inverse_transform(decoded) - X[1200:]  # in the original units
    assert row["squared_error"] == pytest.approx((error**2).sum(1).mean(), rel=1e-9)


def test_standardised_densities_are_of_the_original_units(table, standardised):
    # Factor analysis is equivariant under per-feature scaling, so its density of the original
    # units is the same whether it is fitted to standardised rows or not: a wrong log-Jacobian
    # (its sign, or a missing one: 65 nats here) would show.
    X, _ = table
    by_name = {r["model"]: r for r in standardised}
    raw = FactorAnalysis(2, random_state=0).fit(X[:1200]).score(X[1200:])
    assert by_name["FactorAnalysis"]["log_likelihood"] == pytest.approx(raw, rel=1e-4)
    # PCA without the scaler would be ~200 nats worse here: the VAE and PCA compare at last.
    assert abs(by_name["PCA"]["log_likelihood"] - by_name["VAE"]["log_likelihood"]) < 20


def test_every_model_gets_one_preprocessing():
    models = default_models(2, standardize=True, binarize=0.5, likelihood="gaussian")
    assert models["VAE"].standardize and models["Autoencoder"].binarize == 0.5
    for name in ("PCA", "FactorAnalysis"):
        assert [type(step).__name__ for step in models[name]] == [
            "Binarizer",
            "StandardScaler",
            name,
        ]
        assert models[name][0].threshold == 0.5
    assert type(default_models(2, binarize="dynamic")["PCA"][0]) is BernoulliDraw
    assert type(default_models(2)["PCA"]) is PCA


def test_a_pipeline_compare_cannot_read_is_refused(digits):
    X = digits[0][:200]
    with pytest.raises(ConfigError, match="StandardScaler"):
        compare(X[:150], X[150:], models={"PCA": make_pipeline(MinMaxScaler(), PCA(2))})


def test_a_threshold_gives_every_model_the_same_binary_rows(digits):
    X = digits[0][:800] / 16
    binary = (X > 0.5).astype(np.float64)
    settings = dict(likelihood="bernoulli", **FAST)
    thresholded = compare(
        X[:600], X[600:], models=default_models(2, binarize=0.5, **settings), n_samples=20
    )
    given = compare(binary[:600], binary[600:], models=default_models(2, **settings), n_samples=20)
    for a, b in zip(thresholded, given, strict=True):
        assert a["model"] == b["model"]
        assert a["squared_error"] == pytest.approx(b["squared_error"], rel=1e-9), a["model"]
        if a["log_likelihood"] is not None:
            assert a["log_likelihood"] == pytest.approx(b["log_likelihood"], rel=1e-9)
    assert thresholded[0]["log_likelihood"] < 0  # a probability of binary rows


def test_the_dynamic_draw_of_the_baselines_is_the_one_the_vae_reads(digits):
    X = digits[0][:300] / 16
    vae = VAE(2, binarize="dynamic", likelihood="bernoulli", max_epochs=1, random_state=3)
    vae.fit(X)
    drawn = BernoulliDraw(3).transform(X)
    assert set(np.unique(drawn)) == {0.0, 1.0}
    plain = copy.deepcopy(vae)
    plain.binarize = None
    np.testing.assert_array_equal(plain.transform(drawn), vae.transform(X))
    np.testing.assert_array_equal(BernoulliDraw(3).transform(drawn), drawn)  # binary rows stay


def test_the_markdown_says_what_every_model_saw(standardised):
    seen = describe_preprocessing("table.csv", "real", 64, standardize=True)
    table = to_markdown(standardised, seen)
    lines = table.splitlines()
    assert lines[2 + len(standardised)] == "" and lines[3 + len(standardised)] == seen
    assert seen.startswith("Every model saw: table.csv (real values), standardised per feature")
    assert "densities of the original units" in seen and "64 features" in seen
    binary = describe_preprocessing("digits", "unit", 64, binarize="0.5")
    assert "binarised as x > 0.5, not standardised" in binary
    assert "log-probabilities of the binary rows" in binary and "against the binary rows" in binary
    assert "not standardised" in describe_preprocessing("digits", "unit", 64)


def test_tables_and_plot(rows, tmp_path):
    rows = rows[0]
    table = to_markdown(rows)
    assert table.splitlines()[0].startswith("| model | log_likelihood")
    assert len(table.splitlines()) == 2 + len(rows) and "| Autoencoder | - |" in table
    text = write_csv(rows, tmp_path / "c.csv").read_text().splitlines()
    assert text[0] == "model,log_likelihood,squared_error,knn_accuracy,fit_seconds"
    assert text[2].startswith("Autoencoder,,")
    assert comparison_bars(rows, tmp_path / "c.png").stat().st_size > 1000


def _bar_heights(ax) -> list[float]:
    """Each bar's drawn height as a fraction of its panel's height."""
    heights = []
    for bar in ax.patches:
        (_, y0), (_, y1) = ax.transData.transform([(0, 0), (0, bar.get_height())])
        heights.append(abs(y1 - y0) / ax.bbox.height)
    return heights


def test_an_extreme_log_likelihood_leaves_every_bar_visible_and_labelled():
    values = {"VAE": 17.3, "Autoencoder": None, "PCA": -0.35, "FactorAnalysis": -8.68e6}
    rows = [
        {"model": k, "log_likelihood": v, "squared_error": 2.0, "knn_accuracy": 0.8}
        for k, v in values.items()
    ]
    fig = _comparison_figure(rows, "digits")
    fig.savefig(io.BytesIO(), format="png")  # lays the figure out
    nats, error = fig.axes[:2]
    assert nats.get_yscale() == "symlog" and error.get_yscale() == "linear"
    low, high = nats.get_ylim()
    assert low < -8.68e6 and high > 17.3
    heights = _bar_heights(nats)
    assert min(h for h, v in zip(heights, values.values(), strict=True) if v is not None) > 0.05
    labels = [t.get_text() for t in nats.texts]
    assert labels == ["17.3", "none", "-0.35", "-8.68e+06"]
    assert [t.get_text() for t in error.texts] == ["2"] * 4


def test_a_degenerate_factor_analysis_is_flagged(digits):
    X = digits[0] / 16  # some pixels are always 0 in training
    models = {"FactorAnalysis": FactorAnalysis(2, random_state=0)}
    rows = compare(X[:1200], X[1200:], models=models)
    assert rows[0]["note"] and "constant" in rows[0]["note"]
    assert rows[0]["knn_accuracy"] is None
    assert "FactorAnalysis: " in to_markdown(rows)


def test_the_constant_feature_note_holds_after_standardisation(digits):
    X = digits[0] / 16
    models = default_models(2, standardize=True)
    rows = compare(X[:1200], X[1200:], models={"FactorAnalysis": models["FactorAnalysis"]})
    assert rows[0]["note"] and "constant" in rows[0]["note"]
    raw = FactorAnalysis(2, random_state=0).fit(X[:1200]).score(X[1200:])
    assert rows[0]["log_likelihood"] == pytest.approx(raw, rel=1e-4)  # scale 1 leaves them be


# --- the command, end to end --------------------------------------------------------------------

CLI_FAST = ["--max-epochs", 2, "--samples", 10]


def _cli_compare(tmp_path, name, rows, *flags):
    """Run ``vaekit compare`` on ``rows`` saved as NAME; returns (stdout, markdown, {model: row},
    the held-out split the command made)."""
    path = tmp_path / name
    np.savetxt(path, rows, delimiter=",")
    out = tmp_path / "out"
    done = vaekit("compare", path, *CLI_FAST, "--out", out, *flags)
    with open(out / "comparison.csv") as file:
        table = {r["model"]: r for r in csv.DictReader(file)}
    (X_train, _), (X_test, _) = held_out(load_dataset(str(path)), 0.1, 0)
    split = (X_train.astype(np.float64), X_test.astype(np.float64))  # as compare reads them
    return done.stdout, (out / "comparison.md").read_text(), table, split


def test_the_command_standardises_a_table_for_every_model(tmp_path, table):
    stdout, markdown, rows, (X_train, X_test) = _cli_compare(tmp_path, "t.csv", table[0][:600])
    seen = "Every model saw: t.csv (real values), standardised per feature"
    assert seen in stdout and seen in markdown
    pipe = make_pipeline(StandardScaler(), PCA(2, random_state=0)).fit(X_train)
    expected = pipe.score(X_test) - np.log(pipe[0].scale_).sum()
    assert float(rows["PCA"]["log_likelihood"]) == pytest.approx(expected, abs=1e-6)
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 1000


def test_the_command_takes_a_threshold_for_every_model(tmp_path, digits):
    noisy = digits[0][:600] / 16 + np.random.default_rng(1).normal(0, 0.05, (600, 64))
    _, markdown, rows, (X_train, X_test) = _cli_compare(
        tmp_path, "n.csv", noisy, "--binarize", "0.5"
    )
    assert "Every model saw: n.csv, binarised as x > 0.5, not standardised" in markdown
    pipe = make_pipeline(Binarizer(threshold=0.5), PCA(2, random_state=0)).fit(X_train)
    binary = X_test > 0.5
    recon = pipe[-1].inverse_transform(pipe.transform(X_test))
    assert float(rows["PCA"]["squared_error"]) == pytest.approx(
        ((recon - binary) ** 2).sum(1).mean(), rel=1e-9
    )
    assert float(rows["VAE"]["log_likelihood"]) < 0  # a Bernoulli probability of binary rows
    assert float(rows["Autoencoder"]["squared_error"]) < 64  # against 0/1 rows, not intensities


def test_the_command_refuses_a_bad_threshold(tmp_path):
    done = vaekit("compare", "digits", "--binarize", "half", "--out", tmp_path / "o", check=False)
    assert_clean_error(done, "binarize must be one of none, dynamic, fixed or a threshold")
    assert not (tmp_path / "o").exists()
