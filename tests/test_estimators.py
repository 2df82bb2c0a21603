"""The estimators: scikit-learn conventions, training on digits, options, determinism."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

import vaekit
from vaekit import ConfigError, DataError, TrainingError

FAST = dict(max_epochs=3, verbose=False, random_state=0)


@parametrize_with_checks([vaekit.VAE(verbose=False), vaekit.Autoencoder(verbose=False)])
def test_scikit_learn_conventions(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits_split(digits):
    X, y = digits
    return train_test_split(X, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def trained_vae(digits_split):
    X_train = digits_split[0]
    return vaekit.VAE(2, learning_rate=3e-3, verbose=False, random_state=0).fit(X_train)


def test_digits_vae_beats_its_initialisation_and_probabilistic_pca(digits_split, trained_vae):
    X_train, X_test = digits_split[:2]
    untrained = vaekit.VAE(2, max_epochs=1, learning_rate=1e-12, verbose=False, random_state=0)
    untrained.fit(X_train)
    trained_elbo = trained_vae.elbo(X_test, n_samples=10).mean()
    assert trained_elbo > untrained.elbo(X_test, n_samples=10).mean() + 500
    # A non-linear 2-D latent model should beat the linear one, probabilistic PCA, in nats.
    assert trained_vae.score(X_test, n_samples=200) > PCA(2).fit(X_train).score(X_test)
    assert trained_vae.history_[-1]["val_loss"] < trained_vae.history_[0]["val_loss"] / 2


def test_samples_and_reconstructions_have_the_datas_shape_and_range(digits_split, trained_vae):
    X_test = digits_split[1]
    samples = trained_vae.sample(200, random_state=1)
    recon = trained_vae.reconstruct(X_test)
    assert samples.shape == (200, 64) and recon.shape == X_test.shape
    for values in (samples, recon):  # digits are 0..16; Gaussian means may stray a little
        assert np.mean((values > -2) & (values < 18)) > 0.99
    assert np.abs(recon - X_test).mean() < np.abs(X_test - X_test.mean(0)).mean()
    drawn = trained_vae.sample(5, mean=False, random_state=1)
    assert not np.allclose(drawn, trained_vae.sample(5, random_state=1))


def test_transform_is_deterministic_and_the_embedding_separates_classes(digits_split, trained_vae):
    X_train, X_test, y_train, y_test = digits_split
    Z = trained_vae.transform(X_test)
    assert Z.shape == (len(X_test), 2)
    np.testing.assert_array_equal(Z, trained_vae.transform(X_test))
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(5).fit(trained_vae.transform(X_train), y_train)
    assert knn.score(Z, y_test) > 0.6  # chance is 0.1
    assert trained_vae.get_feature_names_out().tolist() == ["vae0", "vae1"]


def test_same_seed_gives_bit_identical_weights(digits):
    X = digits[0][:300]
    a, b, c = (vaekit.VAE(**{**FAST, "random_state": s}).fit(X) for s in (7, 7, 8))
    weights = [est.module_.state_dict() for est in (a, b, c)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_fitting_leaves_the_global_torch_rng_alone(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    vaekit.VAE(**FAST).fit(digits[0][:100])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli"])
def test_likelihoods_refuse_data_they_cannot_model(digits, likelihood):
    X = digits[0][:100]
    with pytest.raises(DataError, match=likelihood):
        vaekit.VAE(likelihood=likelihood, **FAST).fit(X)


def test_a_refit_checks_the_data_against_the_new_likelihood(digits):
    X = digits[0][:100]
    vae = vaekit.VAE(**FAST).fit(X)
    with pytest.raises(DataError, match="bernoulli"):
        vae.set_params(likelihood="bernoulli").fit(X)


def test_bernoulli_with_binarize_and_continuous_bernoulli_on_unit_data(digits):
    X = digits[0][:200]
    vae = vaekit.VAE(likelihood="bernoulli", binarize=7.5, **FAST).fit(X)
    means = vae.sample(50)
    assert 0 <= means.min() and means.max() <= 1
    assert set(np.unique(vae.sample(50, mean=False))) <= {0.0, 1.0}
    cb = vaekit.VAE(likelihood="continuous_bernoulli", **FAST).fit(X / 16)
    assert np.isfinite(cb.score_samples(X[:10] / 16, n_samples=20)).all()
    with pytest.raises(DataError):
        cb.transform(X[:10])  # values above 1


@pytest.mark.parametrize("sigma", ["fixed", "shared", "per_feature", "decoder"])
def test_every_gaussian_sigma_trains(digits, sigma):
    X = digits[0][:300]
    vae = vaekit.VAE(sigma=sigma, sigma_value=4.0, **{**FAST, "max_epochs": 10}).fit(X)
    assert vae.history_[-1]["loss"] < vae.history_[0]["loss"]
    assert np.isfinite(vae.score_samples(X[:20], n_samples=10)).all()


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 10, 6)])
def test_convolutional_networks_fit_images_of_several_shapes(shape):
    rng = np.random.default_rng(0)
    X = rng.random((40, int(np.prod(shape))))
    vae = vaekit.VAE(3, architecture="conv", image_shape=shape, channels=(4, 8), **FAST).fit(X)
    assert vae.transform(X).shape == (40, 3)
    assert vae.reconstruct(X).shape == X.shape


def test_conv_without_a_shape_needs_square_images():
    with pytest.raises(ConfigError, match="image_shape"):
        vaekit.VAE(architecture="conv", **FAST).fit(np.zeros((10, 10)))


def test_user_supplied_modules_plug_in(digits):
    X = digits[0][:200]
    encoder = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 6))
    decoder = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 64))
    vae = vaekit.VAE(3, encoder=encoder, decoder=decoder, **FAST).fit(X)
    assert vae.transform(X).shape == (200, 3)
    assert vae.module_.encoder is not encoder  # the estimator's parameter is not trained in place
    with pytest.raises(ConfigError, match=r"encoder must map \(N, 64\) to \(N, 4\)"):
        vaekit.VAE(2, encoder=encoder, decoder=nn.Linear(2, 64), **FAST).fit(X)
    with pytest.raises(ConfigError, match="failed on a batch"):
        vaekit.VAE(2, encoder=nn.Linear(64, 4), decoder=decoder, **FAST).fit(X)


def test_linear_architecture_has_no_hidden_layer(digits):
    vae = vaekit.VAE(4, architecture="linear", **FAST).fit(digits[0][:100])
    assert isinstance(vae.module_.encoder, nn.Linear) and isinstance(vae.module_.decoder, nn.Linear)


def test_kl_warmup_ramps_the_kl_weight_per_step_from_zero_to_beta(digits):
    weights = []
    vae = vaekit.VAE(warmup_epochs=5, beta=2.0, **{**FAST, "max_epochs": 7, "batch_size": 45})
    vae.fit(digits[0][:200], callback=lambda record: weights.append(vae.module_.kl_weight))
    # 180 training rows in 4 batches: the last step of epoch e has weight 2 (e - 1/4) / 5.
    assert weights == pytest.approx([2.0 * min(1.0, (e - 0.25) / 5) for e in range(1, 8)])
    first, last = vae.history_[0], vae.history_[-1]
    assert first["reconstruction"] < first["loss"] < first["reconstruction"] + first["kl"]
    assert last["loss"] == pytest.approx(last["reconstruction"] + 2.0 * last["kl"], rel=1e-5)


def test_free_bits_floor_each_units_kl(small_vae_module):
    module = small_vae_module().float().train()
    module.free_bits = 50.0
    terms = module(torch.randn(64, 6), torch.Generator().manual_seed(0))
    assert terms["loss"].item() == pytest.approx(
        terms["reconstruction"].item() + 2 * 50.0, rel=1e-6
    )


def test_iwae_objective_trains(digits):
    X = digits[0][:300]
    vae = vaekit.VAE(objective="iwae", n_samples=5, **{**FAST, "max_epochs": 10}).fit(X)
    assert vae.history_[-1]["val_loss"] < vae.history_[0]["val_loss"]


def test_the_iwae_objective_refuses_what_only_the_elbo_uses(digits):
    X = digits[0][:50]
    for kl_only in ({"beta": 4.0}, {"warmup_epochs": 3}, {"warmup_time": "1m"}, {"free_bits": 0.5}):
        (name,) = kl_only
        with pytest.raises(ConfigError, match=f"^{name} shapes the ELBO's KL term"):
            vaekit.VAE(objective="iwae", **kl_only, **FAST).fit(X)
        vaekit.VAE(objective="elbo", **kl_only, **{**FAST, "max_epochs": 1}).fit(X)
    with pytest.raises(ConfigError, match="^beta and free_bits shape .* leave them at"):
        vaekit.VAE(objective="iwae", beta=2.0, free_bits=0.1, **FAST).fit(X)


def test_autoencoder_gaussian_loss_is_half_the_squared_error(digits):
    X = digits[0][:200]
    ae = vaekit.Autoencoder(5, **FAST).fit(X)
    x = torch.from_numpy(X[:50])
    with torch.no_grad():
        terms = ae.module_.eval()(x, None)
        mean = ae.module_.decoder(ae.module_.encoder(x))
    expected = 0.5 * ((x - mean) ** 2).sum(1).mean() + 0.5 * 64 * np.log(2 * np.pi)
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert ae.transform(X).shape == (200, 5)
    assert not hasattr(ae, "sample") and not hasattr(ae, "score_samples")


def test_sparse_autoencoder_shrinks_its_code(digits):
    X = digits[0][:400]
    plain = vaekit.Autoencoder(8, **{**FAST, "max_epochs": 30}).fit(X)
    sparse = vaekit.Autoencoder(8, sparsity=5.0, **{**FAST, "max_epochs": 30}).fit(X)
    assert np.abs(sparse.transform(X)).mean() < 0.5 * np.abs(plain.transform(X)).mean()


@pytest.mark.parametrize("denoising", ["gaussian", "masking"])
def test_denoising_autoencoder_trains_on_corrupted_inputs(digits, denoising):
    X = digits[0][:300] / 16
    ae = vaekit.Autoencoder(
        8, denoising=denoising, noise_level=0.3, **{**FAST, "max_epochs": 20}
    ).fit(X)
    assert ae.history_[-1]["val_loss"] < ae.history_[0]["val_loss"]
    noisy = X + 0.3 * np.random.default_rng(0).normal(size=X.shape)
    assert np.abs(ae.reconstruct(noisy) - X).mean() < np.abs(noisy - X).mean()


def test_non_finite_losses_stop_training_with_a_clear_error():
    class Exploding(nn.Module):
        def forward(self, x):
            return x.sum(1, keepdim=True).expand(-1, 4) * float("nan")

    decoder = nn.Linear(2, 3)
    with pytest.raises(TrainingError, match=r"not finite.*learning_rate"):
        vaekit.VAE(2, encoder=Exploding(), decoder=decoder, batch_size=5, **FAST).fit(
            np.ones((50, 3))
        )


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_components=0), "n_components"),
        (dict(batch_size=0), "batch_size"),
        (dict(beta=-1.0), "beta"),
        (dict(n_samples=0), "n_samples"),
        (dict(likelihood="laplace"), "Unknown likelihood"),
        (dict(architecture="transformer"), "Unknown architecture"),
        (dict(sigma="huge"), "sigma must be one of"),
        (dict(activation="sine"), "Unknown activation"),
        (dict(validation_fraction=1.0), "validation_fraction"),
    ],
)
def test_bad_parameters_are_refused_with_a_sentence(params, message):
    with pytest.raises(ConfigError, match=message):
        vaekit.VAE(**{**FAST, **params}).fit(np.zeros((10, 4)))


def test_transform_checks_fitting_and_feature_count(digits):
    with pytest.raises(NotFittedError):
        vaekit.VAE().transform(digits[0][:5])
    vae = vaekit.VAE(**FAST).fit(digits[0][:100])
    with pytest.raises(ValueError, match="features"):
        vae.transform(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="NaN"):
        vae.transform(np.full((3, 64), np.nan))
    with pytest.raises(ConfigError, match="n_components"):
        vae.inverse_transform(np.zeros((3, 5)))


def test_standardize_keeps_densities_and_outputs_in_the_original_units(digits, tmp_path):
    X = digits[0][:400].astype(np.float64) * 1000.0 + 5.0  # far from unit scale
    scaled = vaekit.VAE(3, standardize=True, **{**FAST, "max_epochs": 20}).fit(X)
    assert scaled.mean_.shape == (64,) and (scaled.scale_ > 0).all()
    recon = scaled.reconstruct(X)
    assert abs(recon.mean() - X.mean()) < 0.05 * X.std()
    # A density of x in original units: x -> a x + b changes log p by -D log a.
    log_p = scaled.score_samples(X, n_samples=20)
    model_space = scaled._map(
        lambda m, x: vaekit.bounds.log_likelihood(m, x, 20, vaekit.estimators.base.seed_from(0)),
        scaled._prepare(X, reset=False),
    )
    np.testing.assert_allclose(log_p, model_space - np.log(scaled.scale_).sum(), rtol=1e-5)
    loaded = vaekit.load(scaled.save(tmp_path / "scaled"))
    np.testing.assert_array_equal(loaded.reconstruct(X[:5]), scaled.reconstruct(X[:5]))
    with pytest.raises(ConfigError, match="standardize"):
        vaekit.VAE(likelihood="bernoulli", standardize=True, **FAST).fit((X > 5000) * 1.0)


def test_dynamic_binarisation_draws_fresh_batches_from_intensities(digits):
    X = digits[0][:300] / 16
    vae = vaekit.VAE(likelihood="bernoulli", binarize="dynamic", **{**FAST, "max_epochs": 5})
    vae.fit(X)
    assert vae.history_[-1]["loss"] < vae.history_[0]["loss"]
    scores = vae.score_samples(X[:20], n_samples=10)
    np.testing.assert_array_equal(scores, vae.score_samples(X[:20], n_samples=10))
    with pytest.raises(DataError, match="dynamic"):
        vae.transform(X * 16)
    batch = torch.from_numpy(X[:50].astype(np.float32))
    draws = [vae.module_.observed(batch, torch.Generator().manual_seed(s)) for s in (1, 2)]
    assert set(torch.unique(draws[0]).tolist()) <= {0.0, 1.0}
    assert not torch.equal(draws[0], draws[1])


def test_bf16_training_follows_the_fp32_curve(digits):
    # Only the networks run in bf16; the log-densities and the KL stay in float32. Measured over
    # seeds 0-2: a median gap over the 30 epochs of 0.24-0.39%, the largest 1.4-5.9% (the curves
    # drift apart late: two trajectories of one recipe).
    X = digits[0]
    params = {**FAST, "max_epochs": 30, "patience": None, "batch_size": 256}
    curves = {
        precision: vaekit.VAE(8, precision=precision, **params).fit(X).history_
        for precision in ("fp32", "bf16")
    }
    for key in ("loss", "val_loss"):
        fp32 = np.array([h[key] for h in curves["fp32"]])
        bf16 = np.array([h[key] for h in curves["bf16"]])
        gap = np.abs(bf16 - fp32) / np.abs(fp32)
        assert np.median(gap) <= 0.01 and gap.max() <= 0.08, (key, gap)
