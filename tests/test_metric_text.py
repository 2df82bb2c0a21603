"""One table of metric words and units, shared by the report and the shell's summary."""

import pytest

import vaekit
from vaekit.cli.output import print_metrics
from vaekit.evaluation import evaluate
from vaekit.runs.metric_text import METRICS, QUALIFIERS, value_text

README_METRICS = {
    "n_examples": 450,
    "squared_error": 1.97987,
    "reconstruction_nll_at_code": -20.2181,
    "log_likelihood": 17.1034,
    "log_likelihood_sem": 0.85312,
    "importance_samples": 100,
    "elbo": 13.9631,
    "elbo_sem": 0.99745,
    "reconstruction_nll": -19.31,
    "kl": 5.3472,
    "kl_per_unit": [2.70, 2.65],
    "active_units": 2,
    "posterior_mean_variance": [1.04, 1.06],
    "bits_per_dim": -0.38561,
}


def test_the_shell_prints_the_labelled_lines_in_reading_order(capsys):
    print_metrics(README_METRICS)
    assert capsys.readouterr().out.splitlines() == [
        "  examples                450",
        "  log p(x), nats/example  17.103 ± 0.853 (K=100)",
        "  ELBO, nats/example      13.963 ± 0.997",
        "  KL(q||p), nats/example  5.347",
        "  active latent units     2 of 2",
        "  bits/dim (-log p(x))    -0.386",
        "  squared error/example   1.980",
        "  -log p(x|code), nats    -20.218",
    ]


def test_value_text_adds_what_qualifies_a_number():
    assert value_text("kl_per_unit", README_METRICS, "{:.1f}".format) == "2.7, 2.6"
    assert value_text("elbo", {"elbo": 1.5}) == "1.5"  # no standard error recorded
    assert value_text("active_units", {"active_units": 3}) == "3"


def test_log_likelihood_comes_first_and_training_facts_last():
    held_out = [name for name, m in METRICS.items() if m.held_out and name != "n_examples"]
    assert held_out[:3] == ["log_likelihood", "elbo", "reconstruction_nll"]
    assert [name for name, m in METRICS.items() if not m.held_out] == list(METRICS)[-2:]


@pytest.mark.parametrize("model", [vaekit.VAE, vaekit.Autoencoder])
def test_every_number_evaluate_returns_is_described(model, digits):
    X = digits[0][:300] / 16
    fitted = model(2, max_epochs=1, hidden_sizes=(16,), random_state=0, verbose=False).fit(X)
    metrics = evaluate(fitted, X[:50], n_samples=5, elbo_samples=2)
    assert set(metrics) <= set(METRICS) | QUALIFIERS
    for name, metric in METRICS.items():
        if name in metrics:
            assert metric.words and metric.held_out
