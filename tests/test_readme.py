"""The README's Python example runs as written and does what its comments say."""

import re
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
