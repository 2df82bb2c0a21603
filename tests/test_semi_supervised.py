"""The semi-supervised VAE (M2): its bound against a hand computation, scikit-learn's
conventions, partly labelled targets, saving, resuming and the refusals."""

import json
import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_estimator

import vaekit
from vaekit.exceptions import DataError, LabelCollapseWarning
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


class Doubled(torch.nn.Module):
    """An encoder that is not an MLP: twice a linear layer's output."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)

    def forward(self, rows):
        return 2 * self.linear(rows)


@pytest.mark.parametrize(
    "likelihood, encoder",
    [
        ("bernoulli", "mlp"),
        ("poisson", "mlp"),  # the encoder reads log(1 + x): the shared product must too
        ("bernoulli", "linear"),
        ("bernoulli", "other"),
    ],
)
def test_every_class_shares_the_first_layer_and_equals_the_labelled_copies(likelihood, encoder):
    torch.manual_seed(0)
    D, L, C, n = 6, 2, 3, 5
    encoders = {
        "mlp": torch.nn.Sequential(
            torch.nn.Linear(D + C, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2 * L)
        ),
        "linear": torch.nn.Linear(D + C, 2 * L),
        "other": Doubled(D + C, 2 * L),
    }
    module = SemiSupervisedModule(
        encoders[encoder],
        torch.nn.Linear(L + C, D),
        torch.nn.Linear(D, C),
        make_likelihood(likelihood, D),
        make_prior("standard_normal", L, D, None),
        L,
        C,
    )
    x = torch.randint(0, 4, (n, D)).double()
    module.double()
    q = module.encode_every_class(x)
    copies = torch.cat([x.repeat_interleave(C, 0), torch.eye(C).double().repeat(n, 1)], 1)
    torch.testing.assert_close(torch.cat(module.labelled_copies(x), 1), copies, rtol=0, atol=0)
    expected = module.encode(copies)
    assert q.mean.shape == (n * C, L)
    torch.testing.assert_close(q.mean, expected.mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q.log_var, expected.log_var, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(q.mean[0], q.mean[1])  # the classes do move the posterior


def spread_and_two_classes(n: int = 400):
    """Rows of 10 features: a wide spread (sd 3) shared by the first five, the class (0 or 2)
    added to the last five, a little noise; 5 labels per class kept."""
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 2, n)
    X = 0.3 * rng.normal(size=(n, 10))
    X[:, :5] += 3 * rng.normal(size=(n, 1))
    X[:, 5:] += 2 * classes[:, None]
    kept = np.full(n, -1)
    for c in (0, 1):
        first = np.flatnonzero(classes == c)[:5]
        kept[first] = c
    return X, kept


@pytest.mark.parametrize("latent_dim, collapses", [(1, False), (8, True)])
def test_a_classifier_left_uniform_on_the_unlabelled_rows_is_a_warning(latent_dim, collapses):
    """One latent unit holds the spread, so the label must carry the class: q(y|x) is
    confident on the unlabelled rows. Eight hold both, the bound no longer needs y and its
    entropy term keeps q(y|x) near uniform: a LabelCollapseWarning whose KL is the one
    predict_proba gives."""
    X, kept = spread_and_two_classes()
    model = vaekit.SemiSupervisedVAE(
        latent_dim, hidden_sizes=(32,), max_epochs=50, verbose=False, random_state=0
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, kept)
    messages = [str(w.message) for w in caught if w.category is LabelCollapseWarning]
    proba = model.predict_proba(X[kept == -1])
    kl = float((proba * np.log(2 * proba)).sum(1).mean())
    if not collapses:
        assert messages == [] and kl > 0.3
        return
    assert len(messages) == 1 and "m1=VAE" in messages[0]
    reported = float(re.search(r"averages (\S+) nats of a possible 0.69", messages[0]).group(1))
    assert kl < 0.1 * math.log(2) and reported == pytest.approx(kl, abs=0.02)


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


def test_the_bound_without_labels_is_m2s_and_below_log_p_x(digits_few_labels):
    """elbo(X) is sum_y q(y|x) (ELBO(x, y) + log p(y)) + H(q(y|x)): below the bound with the
    best q, log sum_y p(y) exp(ELBO(x, y)), which is below log p(x); elbo + kl is the expected
    reconstruction term of the per-class bounds."""
    X, _, kept = digits_few_labels
    model = vaekit.SemiSupervisedVAE(**(FAST | {"max_epochs": 5})).fit(X[:300], kept[:300])
    rows = X[300:330]
    per_class = np.stack([model.elbo(rows, 3, y=np.full(len(rows), c)) for c in model.classes_], 1)
    best_q = np.log(np.exp(per_class).mean(1))
    bound = model.elbo(rows, 3)
    assert (bound <= best_q + 1e-9).all() and (best_q - bound).max() > 1e-3
    assert best_q.mean() < model.score_samples(rows, 500).mean()  # each an estimate: on average
    q = model.predict_proba(rows)
    kl_per_class = np.stack(
        [model.kl_divergence(rows, 3, y=np.full(len(rows), c)) for c in model.classes_], 1
    )
    expected_reconstruction = (q * (per_class + kl_per_class)).sum(1)
    np.testing.assert_allclose(
        bound + model.kl_divergence(rows, 3), expected_reconstruction, rtol=1e-9
    )


def test_reconstruct_uses_the_label_or_the_classifiers_guess(digits_few_labels):
    X, _, kept = digits_few_labels
    model = vaekit.SemiSupervisedVAE(**FAST).fit(X[:200], kept[:200])
    rows, guess = X[:6], model.predict(X[:6])
    np.testing.assert_allclose(model.reconstruct(rows), model.reconstruct(rows, guess))
    given = np.array([-1, -1, 3, 3, -1, 4])
    completed = np.where(given == -1, guess, given)
    np.testing.assert_allclose(model.reconstruct(rows, given), model.reconstruct(rows, completed))


def test_a_run_keeps_a_balanced_seeded_few_labels(tmp_path, monkeypatch):
    """vaekit train --model semi_supervised --labels-kept N: fit gets N labels, N / 10 of each
    class (seeded by the run's seed), the rest -1; the run reports the held-out accuracy and
    its command trains it again."""
    from vaekit.runs import train_run

    seen = {}
    fit = vaekit.SemiSupervisedVAE.fit

    def recording_fit(self, X, y=None, **kwargs):
        seen["y"] = np.asarray(y)
        return fit(self, X, y, **kwargs)

    monkeypatch.setattr(vaekit.SemiSupervisedVAE, "fit", recording_fit)
    params = {"n_components": 4, "hidden_sizes": (32,), "max_epochs": 2}
    run = train_run(
        "digits",
        model="semi_supervised",
        params=params,
        labels_kept=30,
        seed=3,
        out=tmp_path / "run",
        pictures=False,
        verbose=False,
    )
    y = seen["y"]
    labelled = y != -1
    assert labelled.sum() == 30 and np.bincount(y[labelled].astype(int)).tolist() == [3] * 10
    assert 0 <= run.info["metrics"]["accuracy"] <= 1
    assert run.info["metrics"]["n_labelled"] == run.info["data"]["n_test"]
    assert run.info["data"]["labels_kept"] == 30
    assert "--model semi_supervised --seed 3 --labels-kept 30" in run.info["command"]


STACK = dict(FAST, likelihood="gaussian", sigma="per_feature", max_epochs=3)


def _m1(**params):
    return vaekit.VAE(
        **(dict(n_components=3, hidden_sizes=(16,), max_epochs=3, verbose=False) | params)
    )


def test_the_stack_draws_m1s_codes_in_training_and_takes_their_means_otherwise():
    module = vaekit.SemiSupervisedVAE(**STACK, m1=_m1()).fit(*_few_digits(200)).module_
    mean, log_var = torch.full((20000, 3), 0.5), torch.full((20000, 3), math.log(4.0))
    rows = torch.cat([mean, log_var, torch.zeros(20000, 10)], 1)
    module.train()
    drawn = module.observed(rows, torch.Generator().manual_seed(0))[:, :3]
    assert abs(drawn.mean().item() - 0.5) < 0.03 and abs(drawn.std().item() - 2.0) < 0.03
    module.eval()
    torch.testing.assert_close(module.observed(rows, torch.Generator())[:, :3], mean)


def _few_digits(n):
    X, y = load_digits(return_X_y=True)
    kept = vaekit.keep_labels(y[:n], 30, random_state=0)
    return X[:n] / 16, kept


def test_m1_m2_reads_and_writes_rows_through_m1(tmp_path):
    X, kept = _few_digits(200)
    stack = vaekit.SemiSupervisedVAE(**STACK, m1=_m1()).fit(X, kept)
    assert stack.n_features_in_ == 64 and stack.m1_.n_features_in_ == 64
    assert stack.module_.likelihood.n_features == 3  # M2 models M1's 3-dimensional codes
    assert stack.predict_proba(X[:5]).shape == (5, 10)
    assert stack.transform(X[:5]).shape == (5, 4)
    codes = stack.m1_.transform(X[:5])
    m2_codes = vaekit.SemiSupervisedVAE.transform(stack, X[:5])
    np.testing.assert_allclose(
        stack.inverse_transform(m2_codes, stack.predict(X[:5])),
        stack.m1_.inverse_transform(
            super(vaekit.SemiSupervisedVAE, stack).inverse_transform(m2_codes, stack.predict(X[:5]))
        ),
    )
    assert codes.shape == (5, 3)
    assert stack.sample(4, condition=2).shape == (4, 64)
    drawn = stack.sample(4, condition=2, mean=False)
    assert set(np.unique(drawn)) <= {0.0, 1.0} or stack.m1_.likelihood != "bernoulli"
    stack.save(tmp_path / "stack")
    loaded = vaekit.load(tmp_path / "stack")
    assert isinstance(loaded.m1, vaekit.VAE) and loaded.m1.get_params() == stack.m1_.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), stack.predict_proba(X))
    np.testing.assert_array_equal(loaded.sample(3, condition=1), stack.sample(3, condition=1))
    with pytest.raises(vaekit.exceptions.ConfigError, match="gives no log-likelihood of X"):
        stack.score_samples(X[:3])
    assert vaekit.evaluate(stack, X[:20], kept[:20]).keys() <= {
        "n_examples",
        "accuracy",
        "n_labelled",
        "squared_error",
    }


def test_a_frozen_m1_is_used_as_it_is():
    from sklearn.frozen import FrozenEstimator

    X, kept = _few_digits(200)
    first = _m1(random_state=0).fit(X)
    before = {k: v.clone() for k, v in first.module_.state_dict().items()}
    stack = vaekit.SemiSupervisedVAE(**STACK, m1=FrozenEstimator(first)).fit(X, kept)
    assert stack.m1_.estimator is first
    for key, value in first.module_.state_dict().items():
        assert torch.equal(value, before[key])


@pytest.mark.parametrize("stop_in", ["m1", "m2"])
def test_a_stopped_stack_resumes_bit_for_bit(tmp_path, stop_in):
    X, kept = _few_digits(200)
    params = dict(STACK, max_epochs=4)
    whole = vaekit.SemiSupervisedVAE(**params, m1=_m1(max_epochs=4)).fit(X, kept)
    with pytest.raises(_Stop):
        if stop_in == "m1":  # M1 stopped after its second epoch
            _m1(max_epochs=4, random_state=whole.m1_.random_state).fit(
                X, checkpoint_dir=tmp_path / "state" / "m1", callback=_stop_after(2)
            )
        else:
            vaekit.SemiSupervisedVAE(**params, m1=_m1(max_epochs=4)).fit(
                X, kept, checkpoint_dir=tmp_path / "state", callback=_stop_after(2)
            )
    resumed = vaekit.SemiSupervisedVAE(**params, m1=_m1(max_epochs=4)).fit(
        X, kept, checkpoint_dir=tmp_path / "state"
    )
    for model, other in ((resumed, whole), (resumed.m1_, whole.m1_)):
        for a, b in zip(model.module_.parameters(), other.module_.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"likelihood": "bernoulli"}, "give it likelihood='gaussian'"),
        ({"m1": "vae"}, "m1 must be a vaekit.VAE"),
    ],
)
def test_a_stack_that_cannot_model_codes_is_refused(params, message):
    X, kept = _few_digits(100)
    with pytest.raises(vaekit.exceptions.ConfigError, match=message):
        vaekit.SemiSupervisedVAE(**(STACK | {"m1": _m1()} | params)).fit(X, kept)


def test_the_stack_example_of_the_docs_runs_as_written():
    from pathlib import Path

    page = Path(__file__).parents[1] / "docs" / "semi_supervised.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    (block,) = [b for b in blocks if "load_digits" in b]  # the zoo's M1: tests/test_zoo.py
    namespace: dict = {}
    exec(compile(block, "semi_supervised.md", "exec"), namespace)
    assert namespace["digits"].shape == (4, 64)
    assert namespace["stack"].m1_.n_epochs_ == 5


def test_a_table_with_unknown_labels_trains_from_the_shell_with_its_pictures(tmp_path):
    """Empty label cells (and -1) mark unlabelled rows of a CSV table; the run's pictures
    draw samples for every held-out row, the classifier's class where the label is unknown."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:300, ::4] / 16, y[:300] % 3
    names = np.array(["zero", "one", "two"])[y]
    unknown = np.random.default_rng(0).random(300) < 0.5
    cells = np.where(unknown, np.where(np.arange(300) % 2, "", "-1"), names)
    header = ",".join(f"p{j}" for j in range(X.shape[1])) + ",label"
    lines = [",".join([*(f"{v:.4f}" for v in row), c]) for row, c in zip(X, cells, strict=True)]
    (tmp_path / "few.csv").write_text(header + "\n" + "\n".join(lines) + "\n")
    train = [sys.executable, "-m", "vaekit", "train", str(tmp_path / "few.csv")]
    train += ["--model", "semi_supervised", "--max-epochs", "3", "--out", str(tmp_path / "run")]
    done = subprocess.run(train, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "samples.png").is_file()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    n_test = info["data"]["n_test"]
    assert 0 < info["metrics"]["n_labelled"] < n_test  # accuracy over the known labels only
