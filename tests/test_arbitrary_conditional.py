"""The VAE with arbitrary conditioning (VAEAC): its training splits, its KL to the prior of the
given entries, its imputation against the closed form of a linear decoder, and its life cycle."""

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.impute import SimpleImputer
from sklearn.utils.estimator_checks import check_estimator

import vaekit
from vaekit.exceptions import ConfigError
from vaekit.model.arbitrary_conditioning import KEEP_MIN

FAST = dict(n_components=3, hidden_sizes=(32,), max_epochs=3, verbose=False, random_state=0)


def _holes(X: np.ndarray, fraction: float = 0.4, seed: int = 0):
    mask = np.random.default_rng(seed).random(X.shape) < fraction
    mask[:, 0] = False  # every row keeps an observed entry
    return np.where(mask, np.nan, X), mask


@pytest.fixture(scope="module")
def digits_holes():
    X = load_digits().data[:400] / 16
    holes, mask = _holes(X)
    return X, holes, mask


@pytest.fixture(scope="module")
def fitted(digits_holes):
    _, holes, _ = digits_holes
    return vaekit.ArbitraryConditionalVAE(**FAST).fit(holes)


def test_a_training_split_gives_part_of_the_observed_entries_and_asks_for_the_rest(fitted):
    module, D = fitted.module_, 2000  # wide rows: each row's share is near its probability
    x = torch.randn(500, D, dtype=torch.float64)
    x[torch.rand(500, D) < 0.3] = torch.nan
    rows = module.observed(x, torch.Generator().manual_seed(0))
    targets, given, keep = rows[:, :D], rows[:, D : 2 * D], rows[:, 2 * D :].bool()
    observed = ~torch.isnan(x)
    asked = ~torch.isnan(targets)
    assert not (keep & asked).any() and torch.equal(keep | asked, observed)  # a split of them
    assert torch.equal(targets[asked], x[asked]) and torch.equal(given[keep], x[keep])
    assert (given[~keep] == 0).all()
    share = keep.sum(1) / observed.sum(1)  # one probability per row, uniform in [0.5, 1)
    assert KEEP_MIN - 0.05 < share.min() and share.max() <= 1
    assert abs(share.mean().item() - (1 + KEEP_MIN) / 2) < 0.02
    assert share.std().item() > 0.1  # not one share for every row
    again = module.observed(x, torch.Generator().manual_seed(0))
    assert torch.equal(torch.nan_to_num(again, 7.0), torch.nan_to_num(rows, 7.0))


def test_the_kl_is_to_the_prior_of_the_given_entries(fitted, digits_holes):
    """forward's KL equals the closed form KL(q(z|x_T, c) || p(z|c)) of the same split."""
    module = copy.deepcopy(fitted.module_).double().eval()  # the shared fit stays as it is
    _, holes, _ = digits_holes
    x = torch.as_tensor(holes[:50])
    terms = module(x, torch.Generator().manual_seed(3))
    rows = module.observed(x, torch.Generator().manual_seed(3))
    q, p = module.encode(rows), module.prior.given(rows[:, 64:])
    mq, vq = q.mean.detach().numpy(), q.log_var.exp().detach().numpy()
    mp, vp = p.mean.detach().numpy(), p.log_var.exp().detach().numpy()
    kl = 0.5 * (np.log(vp / vq) + (vq + (mq - mp) ** 2) / vp - 1).sum(1)
    np.testing.assert_allclose(terms["kl"].item(), kl.mean(), rtol=1e-10)


def test_the_imputation_of_a_linear_decoder_is_its_mean_at_the_prior_mean(digits_holes):
    """With a linear decoder E[x_mis | x_obs] is the decoder at the prior's mean given the
    observed entries, exactly; impute's average over K draws of z comes within its Monte Carlo
    error."""
    _, holes, mask = digits_holes
    model = vaekit.ArbitraryConditionalVAE(
        architecture="linear", standardize=False, **{**FAST, "max_epochs": 2}
    ).fit(holes)
    module = model.module_.double()
    rows = torch.as_tensor(holes[:30])
    observed = ~torch.isnan(rows)
    c = torch.cat([torch.nan_to_num(rows), observed.double()], 1)
    p = module.prior.given(c)
    weight, bias = module.decoder.weight.detach(), module.decoder.bias.detach()
    exact = (torch.cat([p.mean, c], 1) @ weight.T + bias).detach().numpy()
    spread = (p.log_var.exp().sqrt() @ weight[:, :3].abs().T).detach().numpy()  # per-draw sd
    model.module_.float()
    imputed = model.impute(holes[:30], n_samples=4000)
    m = mask[:30]
    np.testing.assert_array_equal(imputed[~m], holes[:30][~m])  # observed entries kept
    assert np.all(np.abs(imputed[m] - exact[m]) < 5 * spread[m] / np.sqrt(4000) + 1e-5)


def test_a_rows_imputation_is_its_own_and_draws_vary_with_the_seed(fitted, digits_holes):
    _, holes, mask = digits_holes
    whole = fitted.impute(holes[:40], n_samples=20)
    np.testing.assert_allclose(fitted.impute(holes[5:9], n_samples=20), whole[5:9], atol=1e-6)
    first = fitted.impute(holes[:40], sample=True, random_state=1)
    assert np.array_equal(first, fitted.impute(holes[:40], sample=True, random_state=1))
    other = fitted.impute(holes[:40], sample=True, random_state=2)
    assert not np.allclose(first[mask[:40]], other[mask[:40]])
    assert np.array_equal(first[~mask[:40]], holes[:40][~mask[:40]])


def test_its_decoder_copies_a_given_twin():
    """Columns that come in identical pairs of three independent values: the model fills a
    missing entry from its observed twin, though its code has one unit."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2000, 3))
    X = np.repeat(base, 2, axis=1)  # (a, a, b, b, c, c)
    holes, _ = _holes(X, 0.3, seed=1)
    model = vaekit.ArbitraryConditionalVAE(
        1, hidden_sizes=(64, 64), max_epochs=60, verbose=False, random_state=0
    )
    filled = model.fit(holes).impute(holes, n_samples=20)
    twin_given = np.isnan(holes[:, 2]) & ~np.isnan(holes[:, 3])  # b missing, its twin given
    error = np.abs(filled[twin_given, 2] - X[twin_given, 2])
    assert np.sqrt(np.mean(error**2)) < 0.15  # the column's standard deviation is 1


def test_the_imputer_with_it_beats_the_column_means_on_digits(digits_holes):
    X, holes, mask = digits_holes
    model = vaekit.ArbitraryConditionalVAE(
        architecture="conv", image_shape=(1, 8, 8), standardize=False, channels=(16, 16),
        max_epochs=100, learning_rate=3e-3, verbose=False,
    )  # fmt: skip
    filled = vaekit.VAEImputer(model, n_importance_samples=20, random_state=0).fit_transform(holes)
    means = SimpleImputer().fit_transform(holes)
    rmse = np.sqrt(np.mean((filled - X)[mask] ** 2))
    assert rmse < 0.8 * np.sqrt(np.mean((means - X)[mask] ** 2))


def test_saved_and_resumed_it_imputes_the_same(fitted, digits_holes, tmp_path):
    _, holes, _ = digits_holes
    fitted.save(tmp_path / "model")
    loaded = vaekit.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.impute(holes[:20]), fitted.impute(holes[:20]))
    params = {**FAST, "max_epochs": 5}
    unbroken = vaekit.ArbitraryConditionalVAE(**params).fit(holes)

    def stop_after_three(record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):
        vaekit.ArbitraryConditionalVAE(**params).fit(
            holes, checkpoint_dir=checkpoints, callback=stop_after_three
        )
    resumed = vaekit.ArbitraryConditionalVAE(**params).fit(holes, checkpoint_dir=checkpoints)
    for key, value in unbroken.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key]), key


def test_a_code_alone_is_not_decoded(fitted, digits_holes):
    _, holes, _ = digits_holes
    with pytest.raises(ConfigError, match="cannot be decoded; use reconstruct"):
        fitted.inverse_transform(fitted.transform(holes[:3]))
    assert fitted.reconstruct(holes[:3]).shape == (3, 64)


def test_it_passes_check_estimator():
    check_estimator(vaekit.ArbitraryConditionalVAE(**{**FAST, "max_epochs": 2}))
    imputer = vaekit.VAEImputer(
        vaekit.ArbitraryConditionalVAE(**{**FAST, "max_epochs": 2}), n_importance_samples=5
    )
    check_estimator(imputer)


def test_a_table_with_holes_trains_and_is_imputed_from_the_shell(tmp_path):
    X = load_digits().data[:200, :12] / 16
    holes, mask = _holes(X, 0.3)
    header = ",".join(f"p{j}" for j in range(12))
    lines = [",".join("" if np.isnan(v) else f"{v:.6f}" for v in row) for row in holes]
    (tmp_path / "holes.csv").write_text(header + "\n" + "\n".join(lines) + "\n")
    cli = [sys.executable, "-m", "vaekit"]
    train = ["train", str(tmp_path / "holes.csv"), "--model", "arbitrary_conditional"]
    train += ["--max-epochs", "5", "--out", str(tmp_path / "run")]
    done = subprocess.run(cli + train, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["model"] == "arbitrary_conditional"
    impute = ["impute", str(tmp_path / "run"), "--data", str(tmp_path / "holes.csv")]
    impute += ["--samples", "10", "--out", str(tmp_path / "filled.csv")]
    done = subprocess.run(cli + impute, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"filled {int(mask.sum())} missing values" in done.stdout
    table = np.loadtxt(tmp_path / "filled.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[~mask], X[~mask], atol=1e-6)
    assert np.isfinite(table).all()


def test_a_run_on_images_leaves_out_the_pictures_that_decode_codes_alone(tmp_path):
    from vaekit.runs import train_run
    from vaekit.runs.explorer import check_explorable

    params = {"n_components": 2, "hidden_sizes": (16,), "max_epochs": 1}
    run = train_run(
        "digits", model="arbitrary_conditional", params=params, out=tmp_path / "run",
        verbose=False,
    )  # fmt: skip
    drawn = {p.name for p in (tmp_path / "run").glob("*.png")}
    assert {"reconstructions.png", "latent.png", "curves.png"} <= drawn
    assert not drawn & {"interpolation.png", "traversal.png", "manifold.png", "samples.png"}
    with pytest.raises(ConfigError, match="decodes a code only beside the entries it is given"):
        check_explorable(run.estimator)
