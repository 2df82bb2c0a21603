"""Loading never runs code: the code base reads only JSON, safetensors and pickle-free arrays."""

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "vaekit"
UNSAFE_MODULES = {"pickle", "cloudpickle", "dill", "joblib", "marshal", "shelve"}


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            yield node


def test_no_module_imports_a_pickle_library():
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {n.split(".")[0] for n in names} & UNSAFE_MODULES, f"{path}: {names}"


def test_every_array_load_refuses_pickles_and_torch_load_is_never_called():
    loads = 0
    for path in SOURCE.rglob("*.py"):
        for call in _calls(ast.parse(path.read_text())):
            owner = ast.unparse(call.func.value)
            if call.func.attr == "load" and owner in ("torch",):
                keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
                assert keywords.get("weights_only") == "True", f"{path}: {ast.unparse(call)}"
            if call.func.attr == "load" and owner in ("np", "numpy"):
                loads += 1
                keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
                assert keywords.get("allow_pickle") == "False", f"{path}: {ast.unparse(call)}"
    assert loads >= 1  # the scan does see the .npy loader


def test_nothing_evaluates_strings_as_code():
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec", "__import__"), path
