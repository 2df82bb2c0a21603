"""Recompute the check figure on every card of vaekit's model zoo.

The check figure (log p(x) of the first shipped test rows, K = 100, float64) depends on the
importance samples vaekit draws for each row; after a change to those draws (``row_noise``),
this rewrites each card's ``check.log_likelihood`` from the shipped model and prints old and
new. The test NLL on the card stays as measured: it is an estimate of the same quantity, from
other draws.

Run: .venv/bin/python benchmarks/zoo_recheck.py
"""

import json

from zoo_model import ZOO

import vaekit
from vaekit.zoo import CARD_FILE, pretrained_models, pretrained_test_rows


def main() -> None:
    X = pretrained_test_rows()[0]
    for name, card in pretrained_models().items():
        check = card["check"]
        model = vaekit.load_pretrained(name)
        new = float(model.score_samples(X[: check["rows"]], check["importance_samples"]).mean())
        print(f"{name}: check log p(x) {check['log_likelihood']:.4f} -> {new:.4f}")
        check["log_likelihood"] = new
        (ZOO / name / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
