"""The semi-supervised VAE (M2): its bound against a hand computation, scikit-learn's
conventions, partly labelled targets, saving, resuming and the refusals."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_estimator

import vaekit
from vaekit.exceptions import DataError
from vaekit.model.likelihoods import make_likelihood
from vaekit.model.priors import make_prior
from vaekit.model.semi_supervised import SemiSupervisedModule

FAST = dict(n_components=4, hidden_sizes=(32,), max_epochs=2, verbose=False, random_state=0)


@pytest.fixture(scope="module")
def digits_few_labels():
    X, y = load_digits(return_X_y=True)
    return X / 16, y, vaekit.keep_labels(y, 100, random_state=0)


def test_keep_labels_is_balanced_seeded_and_marks_the_rest():
    y = np.repeat(np.arange(10), 50)
    kept = vaekit.keep_labels(y, 100, random_state=3)
    assert (kept != -1).sum() == 100
    assert np.bincount(kept[kept != -1]).tolist() == [10] * 10
    assert (kept[kept != -1] == y[kept != -1]).all()
    np.testing.assert_array_equal(kept, vaekit.keep_labels(y, 100, random_state=3))
    assert not np.array_equal(kept, vaekit.keep_labels(y, 100, random_state=4))
    names = vaekit.keep_labels(np.array(["a", "b"] * 10), 3, random_state=0)
    assert names.dtype == object and sorted(set(names) - {-1}) == ["a", "b"]
    with pytest.raises(DataError, match="at least one per class"):
        vaekit.keep_labels(y, 5)


def test_the_training_loss_is_the_bound_computed_by_hand():
    """One labelled and one unlabelled row through tiny linear networks: the module's terms
    against the M2 bound written out, with the same draws of z."""
    torch.manual_seed(0)
    D, L, C = 3, 2, 2
    encoder, decoder = torch.nn.Linear(D + C, 2 * L), torch.nn.Linear(L + C, D)
    classifier = torch.nn.Linear(D, C)
    likelihood = make_likelihood("bernoulli", D)
    prior = make_prior("standard_normal", L, D, None)
    module = SemiSupervisedModule(encoder, decoder, classifier, likelihood, prior, L, C)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    rows = torch.cat(
        [x, torch.tensor([[0.0, 1.0], [0.0, 0.0]]), torch.tensor([[2.5, 1], [0, 1]])], 1
    )
    terms = module(rows, torch.Generator().manual_seed(5))
    # The same draws: the labelled row's, then the unlabelled row's for class 0 and 1.
    eps = torch.randn((1, 3, L), generator=torch.Generator().manual_seed(5))[0]
    log_q = torch.log_softmax(classifier(x), -1)

    def bound(row, label, e):
        onehot = torch.nn.functional.one_hot(torch.tensor(label), C).float()
        mean, log_var = encoder(torch.cat([row, onehot])).chunk(2)
        z = mean + torch.exp(0.5 * log_var) * e
        logits = decoder(torch.cat([z, onehot]))
        log_px = -torch.nn.functional.binary_cross_entropy_with_logits(logits, row, reduction="sum")
        kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum()
        return log_px - kl - math.log(C)

    labelled = bound(x[0], 1, eps[0])
    q1 = log_q[1].exp()
    unlabelled = q1[0] * bound(x[1], 0, eps[1]) + q1[1] * bound(x[1], 1, eps[2])
    unlabelled = unlabelled - (q1 * log_q[1]).sum()
    expected = (-labelled - unlabelled + 2.5 * -log_q[0, 1]) / 2
    torch.testing.assert_close(terms["loss"], expected)
    torch.testing.assert_close(terms["classification"], 2.5 * -log_q[0, 1] / 2)


def test_scikit_learn_conventions():
    """Every check but one: scikit-learn's semi-supervised convention makes -1 the mark of an
    unlabelled row, so a class named -1 (as check_classifiers_classes uses) cannot be one."""
    model = vaekit.SemiSupervisedVAE(**(FAST | {"max_epochs": 30, "learning_rate": 1e-2}))
    reason = "-1 marks an unlabelled row, as in LabelSpreading and SelfTrainingClassifier"
    check_estimator(model, expected_failed_checks={"check_classifiers_classes": reason})


def test_few_labels_train_a_classifier_and_a_class_conditional_generator(digits_few_labels):
    X, y, kept = digits_few_labels
    model = vaekit.SemiSupervisedVAE(
        8, likelihood="continuous_bernoulli", max_epochs=30, verbose=False, random_state=0
    ).fit(X, kept)
    assert model.classes_.tolist() == list(range(10))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-9)
    assert model.score(X, y) > 0.5  # 10 classes: chance is 0.1
    assert model.sample(5, condition=3).shape == (5, 64)
    log_px = model.score_samples(X[:4], 20)
    per_class = np.stack(
        [model.score_samples(X[:4], 20, y=np.full(4, c)) for c in model.classes_], 1
    )
    np.testing.assert_allclose(log_px, np.log(np.exp(per_class).mean(1)), rtol=1e-9)
    codes = model.transform(X[:4])
    np.testing.assert_allclose(codes, model.transform(X[:4], model.predict(X[:4])))


def test_save_load_and_resume_give_the_same_model(tmp_path, digits_few_labels):
    X, _, kept = digits_few_labels
    X, kept = X[:300], kept[:300].copy()
    kept[:20] = np.arange(20) % 10
    params = dict(FAST, max_epochs=4)
    whole = vaekit.SemiSupervisedVAE(**params).fit(X, kept)
    whole.save(tmp_path / "model")
    loaded = vaekit.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_proba(X), whole.predict_proba(X))
    with pytest.raises(_Stop):  # stopped after epoch 2, its checkpoint written
        vaekit.SemiSupervisedVAE(**params).fit(
            X, kept, checkpoint_dir=tmp_path / "state", callback=_stop_after(2)
        )
    resumed = vaekit.SemiSupervisedVAE(**params).fit(X, kept, checkpoint_dir=tmp_path / "state")
    for a, b in zip(resumed.module_.parameters(), whole.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class _Stop(Exception):
    pass


def _stop_after(epochs):
    def callback(record):
        if record["epoch"] == epochs:
            raise _Stop

    return callback


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.full(20, -1), "no labelled row"),
        (np.linspace(0, 1, 20), "Unknown label type: continuous"),
        (np.array(["-1"] * 20), "no labelled row"),
        (np.zeros(5), "one class label per row"),
    ],
)
def test_bad_targets_are_refused_in_one_sentence(y, message):
    X = np.random.default_rng(0).random((20, 4))
    with pytest.raises(DataError, match=message):
        vaekit.SemiSupervisedVAE(**FAST).fit(X, y)


def test_labels_fit_did_not_see_are_refused(digits_few_labels):
    X, _, kept = digits_few_labels
    model = vaekit.SemiSupervisedVAE(**FAST).fit(X[:200], np.where(kept[:200] == 9, -1, kept[:200]))
    with pytest.raises(DataError, match="which fit did not see"):
        model.transform(X[:3], np.array([9, 9, 9]))
