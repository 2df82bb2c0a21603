"""The README's Python example runs as written and does what its comments say."""

import re
import textwrap
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(block.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    X, Z, new, same = (namespace[k] for k in ("X", "Z", "new", "same"))
    assert Z.shape == (1797, 2) and new.shape == (16, 64)
    np.testing.assert_allclose(same.transform(X[:10]), Z[:10], rtol=1e-12)
    assert (tmp_path / "my_vae" / "model.safetensors").is_file()


def test_the_readme_model_examples_run_as_written():
    """Every later Python block (the VampPrior, two stochastic layers, the conditional VAE),
    run on the first block's digits, does what its comments say."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    namespace: dict = {"X": X, "y": y, "vaekit": __import__("vaekit")}
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[1:]
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(textwrap.dedent(block), "README.md", "exec"), namespace)
    assert namespace["vae"].pseudo_inputs_ is None  # the two-layer model came last of the VAEs
    assert [c.shape for c in namespace["vae"].layer_codes(X / 16)] == [(1797, 8), (1797, 4)]
    classifier = LogisticRegression(max_iter=2000).fit(X / 16, y)
    assert (classifier.predict(namespace["sevens"]) == 7).mean() >= 0.8
