"""The documentation site: every example of docs/index.md and docs/guide/*.md runs as written
and does what its prose says, `mkdocs build --strict` passes, and every public method of the
exported estimators states its parameters and what it returns.

A page's ```python blocks run in one namespace, in a temporary working directory, in the order
they appear, with its shell blocks between them: every `vaekit ...` command of a ```sh or
```console block must parse (a flag the command does not have fails), and runs in-process
unless the block is marked `<!-- parse only: why -->`. The lines a ```console block shows as a
command's output, and a ```text block as what the Python block before it prints, must be among
the lines printed, with every number read as any number; what the prose says of the numbers is
checked by the page's own check below.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import vaekit
from vaekit.cli import main
from vaekit.cli.parser import build_parser
from vaekit.data import DATASETS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [DOCS / "index.md", *sorted((DOCS / "guide").glob("*.md"))]
#: The guide's pages, one per task (issue 16).
GUIDE = [
    "generate",
    "reduce",
    "anomalies",
    "likelihood",
    "impute",
    "condition",
    "scale-out",
    "explore",
]
#: A fenced block (indented too, in a list item), with the HTML comment on the line before it.
FENCE = re.compile(
    r"^(?:[ ]*<!--(?P<note>[^\n]*?)-->\n)?(?P<indent>[ ]*)```(?P<lang>[\w-]*)\n"
    r"(?P<body>.*?)^(?P=indent)```[ ]*$",
    re.S | re.M,
)
#: Programs other than vaekit that a shell block may name (they are not run).
OTHER_PROGRAMS = {"make", "pip", "head", "tensorboard", "torchrun", "python"}
NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?")


@dataclass
class Block:
    lang: str
    body: str
    line: int  # the line of the page where the body starts
    parse_only: bool


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        note = (match.group("note") or "").strip()
        line = text.count("\n", 0, match.start("body"))
        body = textwrap.dedent(match.group("body"))
        found.append(Block(match.group("lang"), body, line, "parse only" in note))
    return found


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """(command line, the lines of output shown after it) of a shell block."""
    out: list[tuple[str, list[str]]] = []
    lines = iter(block.body.splitlines())
    for line in lines:
        if block.lang == "console" and not line.startswith("$ "):
            if out:
                out[-1][1].append(line)
            continue
        line = line.removeprefix("$ ")
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        if line.strip() and not line.lstrip().startswith("#"):
            out.append((line, []))
    return out


def vaekit_argv(line: str) -> list[str] | None:
    """The arguments of the vaekit command on a line (None for another program)."""
    argv = shlex.split(line, comments=True)
    if argv[0] == "vaekit":
        return argv[1:]
    assert argv[0] in OTHER_PROGRAMS, f"unknown program in {line!r}"
    if argv[0] == "torchrun" and "-m" in argv:
        module = argv.index("-m") + 1
        assert argv[module] == "vaekit", line
        return argv[module + 1 :]
    return None


def parse(argv: list[str], line: str):
    """argparse's reading of a documented command; a flag it does not know fails the test."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"the documented command does not parse: {line}")


def masked(text: str) -> str:
    return NUMBER.sub("N", text.strip())


@dataclass
class TrainedRuns:
    """Runs of registered datasets that an earlier page trained, by their arguments: the same
    command again copies the folder (training is seeded) and gives the same output."""

    folder: Path
    runs: dict[tuple[str, ...], tuple[Path, str]]


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory) -> TrainedRuns:
    return TrainedRuns(tmp_path_factory.mktemp("runs"), {})


def run_command(argv: list[str], line: str, trained: TrainedRuns) -> str:
    """Run a documented command in-process in the working directory; returns what it printed."""
    args = parse(argv, line)
    key = tuple(argv)
    reusable = args.command == "train" and args.data in DATASETS and args.out is not None
    if reusable and key in trained.runs:
        folder, printed = trained.runs[key]
        shutil.copytree(folder, args.out)
        return printed
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    printed = out.getvalue() + err.getvalue()
    assert status == 0, f"{line} exited with {status}:\n{printed}"
    if reusable:
        folder = trained.folder / str(len(trained.runs))
        shutil.copytree(args.out, folder)
        trained.runs[key] = (folder, printed)
    return printed


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_example_of_the_page_runs_as_written(page, tmp_path, monkeypatch, trained_runs):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "no-data-here"))  # digits need none
    namespace: dict = {"__name__": "docs"}
    found = blocks(page)
    fences = [x for x in page.read_text().splitlines() if x.lstrip().startswith("```")]
    assert len(fences) == 2 * len(found), f"{page.name} has a code block this test cannot read"
    assert any(b.lang == "python" for b in found), f"{page.name} has no Python example"
    assert any(b.lang in ("sh", "console") for b in found), f"{page.name} has no shell example"
    printed_by_python = ""
    for block in found:
        if block.lang == "python":
            source = "\n" * block.line + block.body
            with contextlib.redirect_stdout(io.StringIO()) as out:
                exec(compile(source, str(page), "exec"), namespace)
            printed_by_python = out.getvalue()
        elif block.lang == "text":  # what the Python block before it prints
            printed = {masked(x) for x in printed_by_python.splitlines()}
            missing = [x for x in block.body.splitlines() if masked(x) not in printed]
            assert not missing, f"the example before line {block.line} did not print {missing}"
        elif block.lang in ("sh", "console"):
            for line, shown in commands(block):
                argv = vaekit_argv(line)
                if argv is None:
                    continue
                if block.parse_only:
                    parse(argv, line)
                    continue
                printed = {masked(x) for x in run_command(argv, line, trained_runs).splitlines()}
                missing = [x for x in shown if masked(x) not in printed]
                assert not missing, f"{line!r} did not print {missing}"
    CHECKS[page.stem](namespace, tmp_path)


# ---- what each page's prose says its examples do --------------------------------------------
def check_index(ns, tmp):
    X, Z, new, same = ns["X"], ns["Z"], ns["new"], ns["same"]
    assert Z.shape == (1797, 2) and new.shape == (16, 64)
    np.testing.assert_allclose(same.transform(X[:10]), Z[:10], rtol=1e-12)
    assert (tmp / "digits_vae" / "model.safetensors").is_file()
    assert (tmp / "runs/digits/report.html").is_file() and (tmp / "samples.png").is_file()
    assert len((tmp / "embeddings.csv").read_text().splitlines()) == 451


def check_generate(ns, tmp):
    new, again, other = ns["new"], ns["again"], ns["other"]
    assert new.shape == ns["typical"].shape == ns["noisy"].shape == (16, 64)
    np.testing.assert_array_equal(new, again)
    assert not np.allclose(new, other)
    assert np.abs(ns["noisy"] - new).mean() > 0.01  # draws carry the likelihood's noise
    assert np.load(tmp / "rows.npy").shape == (100, 8, 8)
    for picture in ("samples.png", "typical.png"):
        assert (tmp / picture).stat().st_size > 0


def check_reduce(ns, tmp):
    assert ns["model"].score(ns["X_test"], ns["y_test"]) > 0.8
    Z, means, variances, kl = ns["Z"], ns["means"], ns["variances"], ns["kl"]
    assert Z.shape == (450, 8) and ns["codes"].shape == (450, 8)
    np.testing.assert_allclose(means, Z, rtol=1e-10)
    assert (variances > 0).all() and kl.shape == (8,) and (kl >= 0).all()
    assert np.load(tmp / "all.npy").shape == (1797, 2)
    assert (tmp / "embeddings.csv").read_text().startswith("z1,z2,label\n")


def check_anomalies(ns, tmp):
    assert ns["auroc"] > 0.8  # "about 0.9"
    assert 0 < ns["flagged"] < 1
    assert not hasattr(ns["vae"], "module_")  # fit trains a clone; the template stays unfitted
    np.testing.assert_allclose(
        ns["decisions"], ns["held_out"].score_samples(ns["sevens"]) - ns["held_out"].offset_
    )
    header = (tmp / "scores.csv").read_text().splitlines()[0]
    assert header == "row,log_likelihood,decision,prediction,label"
    assert len((tmp / "all.csv").read_text().splitlines()) == 1798


def check_likelihood(ns, tmp):
    log_px, elbo, numbers = ns["log_px"], ns["elbo"], ns["numbers"]
    assert log_px.shape == elbo.shape == (450,)
    assert elbo.mean() < log_px.mean()
    assert numbers["log_likelihood"] == pytest.approx(log_px.mean(), abs=1e-9)
    assert np.abs(ns["fast"] - log_px).max() < 0.05
    assert log_px.mean() - ns["pca"] > 8  # "about e^10 times more probable" than PCA's
    assert (tmp / "metrics.json").is_file()


def check_impute(ns, tmp):
    X, holes, filled, missing = ns["X"], ns["holes"], ns["filled"], ns["missing"]
    np.testing.assert_array_equal(filled[~missing], X[~missing])  # observed unchanged
    assert not np.isnan(filled).any()
    assert ns["rmse"] < ns["mean_rmse"]
    draws = ns["draws"]
    assert not np.allclose(draws[0], draws[1])
    np.testing.assert_array_equal(draws[0][~missing[:100]], holes[:100][~missing[:100]])
    for name in ("filled.npy", "draw3.npy"):
        assert not np.isnan(np.load(tmp / name)).any()


def check_condition(ns, tmp):
    from sklearn.linear_model import LogisticRegression

    X, y = ns["X"], ns["y"]
    reader = LogisticRegression(max_iter=2000).fit(X, y)
    assert (reader.predict(ns["sevens"]) == 7).mean() >= 0.8  # "ten new 7s"
    assert (reader.predict(ns["one_each"]) == np.arange(10)).mean() >= 0.8
    assert ns["codes"].shape == (1797, 2)
    assert ns["bold"].mean() > ns["ink"].mean()  # 40% ink is more than the digits' average
    for picture in ("sevens.png", "classes.png"):
        assert (tmp / picture).is_file()


def check_scale_out(ns, tmp):
    vae = ns["vae"]
    assert ns["same"] and vae.n_epochs_ == 10
    np.testing.assert_array_equal(ns["sparse"].transform(ns["X"]), vae.transform(ns["X"]))
    assert ns["eight_bit"].n_epochs_ == 10
    assert ns["timed"].stopped_by_ == "max_time"
    assert (tmp / "state").is_dir() and (tmp / "runs/timed/run.json").is_file()


def check_explore(ns, tmp):
    assert ns["line"].shape == (10, 64)
    assert ns["address"].startswith("http://127.0.0.1:")
    for picture in ("latent.png", "manifold.png", "interpolation.png", "traversal.png"):
        assert (tmp / picture).stat().st_size > 0
    assert (tmp / "runs/digits/report.html").is_file()
    assert len((tmp / "pairs.csv").read_text().splitlines()) == 6


CHECKS = {
    name.removeprefix("check_").replace("_", "-"): f
    for name, f in dict(globals()).items()
    if name.startswith("check_")
}


def test_every_guide_page_is_there_and_checked():
    assert [p.stem for p in sorted((DOCS / "guide").glob("*.md"))] == sorted(GUIDE)
    assert set(CHECKS) == {"index", *GUIDE}


# ---- the site ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    """mkdocs build --strict: broken links and anchors, pages left out of the nav, API
    references that do not resolve and docstrings griffe cannot read all fail it."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for page in GUIDE:
        assert (tmp_path / "guide" / page / "index.html").is_file()
    estimators = (tmp_path / "api" / "estimators" / "index.html").read_text()
    for name in ("VAE.fit", "VAE.score_samples", "AnomalyDetector.predict", "VAEImputer.transform"):
        assert f'id="vaekit.{name}"' in estimators
    assert "n_components" in estimators  # the Parameters that estimators/params.py assembles
    assert (tmp_path / "benchmarks" / "index.html").is_file()


def test_the_api_reference_covers_every_public_name():
    """Every name in vaekit.__all__ has its `::: ...` entry (or its module's) in docs/api/."""
    targets = set()
    for page in (DOCS / "api").glob("*.md"):
        targets |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), re.M))
    for name in vaekit.__all__:
        module = getattr(vaekit, name).__module__
        assert f"vaekit.{name}" in targets or module in targets, f"{name} is not in docs/api/"
    assert {"vaekit.runs.train_run", "vaekit.runs.open_run", "vaekit.runs.resume_run"} <= targets
    assert {"vaekit.data.load_dataset", "vaekit.exceptions"} <= targets


# ---- docstrings -------------------------------------------------------------------------------
ESTIMATORS = [
    vaekit.VAE,
    vaekit.Autoencoder,
    vaekit.AnomalyDetector,
    vaekit.VAEImputer,
    vaekit.SemiSupervisedVAE,
]
FUNCTIONS = [vaekit.evaluate, vaekit.load, vaekit.keep_labels, vaekit.export_onnx]
FUNCTIONS += [vaekit.load_pretrained, vaekit.pretrained_models]
SECTION = re.compile(r"^(\w[\w ]*)\n-{3,}\n", re.M)


def public_methods(cls) -> list[tuple[str, object]]:
    """The public methods that vaekit defines on ``cls`` (scikit-learn's own are documented
    there)."""
    found = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, name)
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if inspect.isfunction(func) and func.__module__.startswith("vaekit."):
            found.append((f"{cls.__name__}.{name}", func))
    return found


DOCUMENTED = [m for cls in ESTIMATORS for m in public_methods(cls)]
DOCUMENTED += [(f.__name__, f) for f in FUNCTIONS]


def sections(doc: str | None) -> dict[str, str]:
    """A numpydoc docstring's sections by heading: {"Parameters": "...", "Returns": "..."}."""
    doc = inspect.cleandoc(doc or "")
    heads = list(SECTION.finditer(doc))
    ends = [h.start() for h in heads[1:]] + [len(doc)]
    return {h.group(1): doc[h.end() : end] for h, end in zip(heads, ends, strict=True)}


def documented_names(section: str) -> set[str]:
    """The names a Parameters section describes: ``x : type``, ``x, y : type``, ``**kwargs``."""
    names = set()
    for line in section.splitlines():
        if line and not line[0].isspace():
            names |= {n.strip().lstrip("*") for n in line.split(" : ")[0].split(",")}
    return names


def test_the_public_api_is_covered():
    names = {name for name, _ in DOCUMENTED}
    for method in ("fit", "transform", "inverse_transform", "reconstruct", "save"):
        assert f"VAE.{method}" in names
    assert {"AnomalyDetector.decision_function", "VAEImputer.from_fitted"} <= names
    assert {"SemiSupervisedVAE.predict_proba", "evaluate", "load"} <= names


@pytest.mark.parametrize(("name", "func"), DOCUMENTED, ids=[n for n, _ in DOCUMENTED])
def test_public_methods_state_their_parameters_and_returns(name, func):
    found = sections(func.__doc__)
    assert "Returns" in found and found["Returns"].strip(), f"{name} has no Returns section"
    if name.endswith(".fit"):
        assert found["Returns"].split()[0] == "self", f"{name} should return self"
    params = [p for p in inspect.signature(func).parameters if p not in ("self", "cls")]
    if params:
        assert "Parameters" in found, f"{name} has no Parameters section"
        missing = [p for p in params if p not in documented_names(found["Parameters"])]
        assert not missing, f"{name}'s docstring does not describe {missing}"
