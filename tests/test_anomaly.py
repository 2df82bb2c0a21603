"""The anomaly detector: scikit-learn's outlier-detector conventions, and detection that works."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from vaekit import VAE, Autoencoder, ConfigError
from vaekit.estimators.anomaly import AnomalyDetector

HELD_OUT = 6  # the digit the models never see in training
QUICK = dict(max_epochs=3, hidden_sizes=(32,), verbose=False, random_state=0)
DIGITS_MODEL = dict(n_components=4, hidden_sizes=(128,), learning_rate=3e-3, random_state=0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread: on a busy two-core machine, thread pools spinning against each other make
    these small fits several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


@parametrize_with_checks(
    [
        AnomalyDetector(estimator=VAE(verbose=False, max_epochs=5), n_importance_samples=20),
        AnomalyDetector(Autoencoder(verbose=False, max_epochs=5), score_type="reconstruction"),
    ]
)
def test_scikit_learn_conventions(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits_split():
    """Digits scaled to [0, 1]: training rows without HELD_OUT, test rows with every digit."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.3, random_state=0)
    return X_train[y_train != HELD_OUT], X_test, y_test == HELD_OUT


@pytest.fixture(scope="module")
def vae_detector(digits_split):
    template = VAE(**DIGITS_MODEL, verbose=False)
    detector = AnomalyDetector(template, n_importance_samples=100).fit(digits_split[0])
    assert not hasattr(template, "module_")  # the template itself is never fitted
    return detector


def test_the_held_out_digit_scores_lower_under_every_score(digits_split, vae_detector):
    X_train, X_test, is_outlier = digits_split
    vae = vae_detector.estimator_
    aurocs = {"log_likelihood": roc_auc_score(is_outlier, -vae_detector.score_samples(X_test))}
    for score_type in ("elbo", "reconstruction"):
        detector = AnomalyDetector.from_fitted(vae, X_train, score_type=score_type)
        aurocs[score_type] = roc_auc_score(is_outlier, -detector.score_samples(X_test))
    ae = Autoencoder(**DIGITS_MODEL, verbose=False)
    detector = AnomalyDetector(ae, score_type="reconstruction").fit(X_train)
    aurocs["autoencoder"] = roc_auc_score(is_outlier, -detector.score_samples(X_test))
    # Measured: 0.95 to 1.0 for the VAE's scores over seeds 0-2 (the ELBO's lowest, 0.947 at
    # seed 0), 0.999 for the autoencoder; chance is 0.5.
    assert min(aurocs.values()) > 0.9, aurocs
    # The held-out digit is flagged far more often than the unseen rows of the other digits
    # (measured: 1.0 and 0.21; 10% of the training rows are flagged by construction).
    flagged = vae_detector.predict(X_test) == -1
    assert flagged[is_outlier].mean() > 0.9 > 0.4 > flagged[~is_outlier].mean()


@pytest.mark.parametrize("score_type", ["log_likelihood", "elbo", "reconstruction"])
def test_scores_are_what_they_say(digits_split, vae_detector, score_type):
    X_train, X_test = digits_split[:2]
    vae = vae_detector.estimator_
    detector = AnomalyDetector.from_fitted(
        vae, X_train, score_type=score_type, contamination=0.05, n_importance_samples=50
    )
    expected = {
        "log_likelihood": lambda X: vae.score_samples(X, n_samples=50),
        "elbo": vae.elbo,
        "reconstruction": lambda X: -((X - vae.reconstruct(X)) ** 2).sum(1),
    }[score_type]
    assert detector.estimator_ is vae  # reused, not copied or retrained
    np.testing.assert_allclose(detector.score_samples(X_test), expected(X_test))
    assert detector.offset_ == pytest.approx(np.percentile(expected(X_train), 5))
    np.testing.assert_allclose(detector.reference_scores_, expected(X_train))
    np.testing.assert_array_equal(detector.score_samples(X_test), detector.score_samples(X_test))


@pytest.mark.parametrize("contamination", [0.02, 0.1, 0.25, 0.5])
def test_contamination_is_the_fraction_of_reference_rows_flagged(
    digits_split, vae_detector, contamination
):
    X_train, X_test = digits_split[:2]
    vae = vae_detector.estimator_
    detector = AnomalyDetector.from_fitted(
        vae, X_train, score_type="reconstruction", contamination=contamination
    )
    predicted = detector.predict(X_train)
    assert set(np.unique(predicted)) == {-1, 1}
    assert abs(np.mean(predicted == -1) - contamination) <= 1 / len(X_train)
    decision = detector.decision_function(X_test)
    np.testing.assert_array_equal(np.where(decision < 0, -1, 1), detector.predict(X_test))
    np.testing.assert_allclose(decision, detector.score_samples(X_test) - detector.offset_)


def test_fit_flags_the_contamination_fraction_of_the_training_rows(digits_split, vae_detector):
    X_train = digits_split[0]
    assert abs(np.mean(vae_detector.predict(X_train) == -1) - 0.1) <= 1 / len(X_train)
    detector = AnomalyDetector(Autoencoder(**QUICK), score_type="reconstruction", contamination=0.3)
    labels = detector.fit_predict(X_train)
    assert abs(np.mean(labels == -1) - 0.3) <= 1 / len(X_train)
    np.testing.assert_array_equal(labels, detector.predict(X_train))


def test_defaults_and_seeds(digits_split):
    X = digits_split[0][:200]
    detector = AnomalyDetector(score_type="elbo", random_state=3)
    assert detector.fit(X).estimator is None
    assert isinstance(detector.estimator_, VAE) and detector.estimator_.random_state == 3
    # Without any seed, one is drawn at fit, so a fitted detector's scores do not wander.
    unseeded = AnomalyDetector(VAE(**{**QUICK, "random_state": None})).fit(X)
    assert isinstance(unseeded.estimator_.random_state, int)
    np.testing.assert_array_equal(unseeded.score_samples(X), unseeded.score_samples(X))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(score_type="likelihood"), "score_type must be"),
        (dict(contamination=0.0), "contamination must be a number in"),
        (dict(contamination=0.6), "contamination must be a number in"),
        (dict(contamination="auto"), "contamination must be a number in"),
        (dict(n_importance_samples=0), "n_importance_samples must be a positive integer"),
        (dict(estimator=PCA(2)), "estimator must be a vaekit VAE or Autoencoder"),
        (dict(estimator=Autoencoder(), score_type="elbo"), "the elbo score needs a VAE"),
        (dict(estimator=Autoencoder()), "the log_likelihood score needs a VAE"),
    ],
)
def test_bad_parameters_are_refused_at_fit(digits_split, params, message):
    detector = AnomalyDetector(**params)  # scikit-learn convention: __init__ only stores
    with pytest.raises(ConfigError, match=message):
        detector.fit(digits_split[0])


def test_from_fitted_refuses_an_unfitted_model_and_a_wrong_score(digits_split, vae_detector):
    X = digits_split[0]
    with pytest.raises(ConfigError, match="from_fitted needs a fitted model"):
        AnomalyDetector.from_fitted(VAE(), X)
    ae = Autoencoder(**QUICK).fit(X)
    with pytest.raises(ConfigError, match="the elbo score needs a VAE"):
        AnomalyDetector.from_fitted(ae, X, score_type="elbo")
    with pytest.raises(ConfigError, match="contamination"):
        AnomalyDetector.from_fitted(vae_detector.estimator_, X, contamination=1.0)


def test_bad_input_is_a_value_error(digits_split, vae_detector):
    X = digits_split[0][:50].copy()
    X[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AnomalyDetector(VAE(**QUICK)).fit(X)
    for method in (vae_detector.score_samples, vae_detector.decision_function):
        with pytest.raises(ValueError, match="NaN"):
            method(X)
    with pytest.raises(ValueError, match="features"):
        vae_detector.predict(digits_split[0][:5, :10])
    with pytest.raises(ValueError, match="NaN"):
        AnomalyDetector.from_fitted(vae_detector.estimator_, X)
