"""The ``vaekit`` command: parses arguments and calls the estimators and runs. Nothing else.

Every failure the user can fix prints one line, ``vaekit: error: ...``, and exits with status 2;
outputs are written atomically, so a failed command leaves nothing half-written behind.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import re
import sys
from pathlib import Path

import numpy as np

from . import __version__, plots
from .compare import compare, default_models, to_markdown, write_csv
from .data import load_dataset
from .estimators import VAE, AnomalyDetector, Autoencoder
from .estimators.anomaly import SCORE_TYPES
from .evaluation import evaluate
from .exceptions import ConfigError, VaekitError
from .io import write_atomic
from .runs import (
    DATA_BINARIZE,
    MODELS,
    data_defaults,
    held_out,
    interpolate,
    open_run,
    train_run,
    traverse,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

EXAMPLES = {
    "train": "vaekit train digits --n-components 2 --max-epochs 50 --out runs/digits",
    "evaluate": "vaekit evaluate runs/digits --samples 1000",
    "sample": "vaekit sample runs/digits -n 64 --out samples.png",
    "reconstruct": "vaekit reconstruct runs/digits -n 16 --out reconstructions.png",
    "encode": "vaekit encode runs/digits --out embeddings.csv",
    "interpolate": "vaekit interpolate runs/digits --pairs 4 --steps 10 --out interpolation.png",
    "traverse": "vaekit traverse runs/digits --steps 9 --out traversal.png",
    "score": "vaekit score runs/digits --data my_rows.csv --out scores.csv",
    "report": "vaekit report runs/digits",
    "compare": "vaekit compare digits --n-components 2 --out compare-digits",
    "demo": "vaekit demo --out runs/demo",
}
RUN_OPTIONS = ("model", "data", "out", "data_dir", "binarize", "test_fraction", "seed")


# ---- estimator parameters as flags ----
def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _optional(convert):
    def parse(text: str):
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = convert.__name__
    return parse


def _float_or_dynamic(text: str):
    return text if text == "dynamic" else float(text)


#: Converters for parameters whose default (None) does not tell their type.
OPTIONAL_TYPES = {
    "image_shape": _optional(_int_tuple),
    "binarize": _optional(_float_or_dynamic),
    "patience": _optional(int),
    "clip_grad_norm": _optional(float),
    "denoising": _optional(str),
}
SKIPPED_PARAMS = {"encoder", "decoder", "random_state", "verbose", "binarize"}


def estimator_params() -> dict[str, inspect.Parameter]:
    """Every parameter of VAE and Autoencoder that a flag or a config file can set."""
    params: dict[str, inspect.Parameter] = {}
    for cls in (VAE, Autoencoder):
        for name, p in inspect.signature(cls).parameters.items():
            if name not in SKIPPED_PARAMS:
                params.setdefault(name, p)
    return params


def _param_help() -> dict[str, str]:
    """First sentence of each parameter's description in the estimators' docstrings."""
    helps: dict[str, str] = {}
    for cls in (VAE, Autoencoder):
        for names, text in re.findall(
            r"\n    (\w[\w, ]*) : [^\n]*\n((?:        [^\n]*\n)+)", cls.__doc__
        ):
            sentence = " ".join(text.split()).split(". ")[0].rstrip(".")
            for name in names.split(", "):
                helps.setdefault(name, sentence)
    return helps


def _converter(p: inspect.Parameter):
    if p.name in OPTIONAL_TYPES:
        return OPTIONAL_TYPES[p.name]
    if isinstance(p.default, tuple):
        return _int_tuple
    return type(p.default)


def add_estimator_flags(parser: argparse.ArgumentParser) -> None:
    """Add a --flag for every estimator parameter, with its docstring's first sentence as help."""
    group = parser.add_argument_group("model parameters (as in vaekit.VAE / vaekit.Autoencoder)")
    helps = _param_help()
    for name, p in estimator_params().items():
        flag = "--" + name.replace("_", "-")
        text = f"{helps.get(name, '')} (default: {p.default})".lstrip()
        if isinstance(p.default, bool):
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            group.add_argument(
                flag, dest=name, type=_converter(p), default=None, metavar=name.upper(), help=text
            )


# ---- the commands ----
def cmd_train(args) -> None:
    """vaekit train: config file, then flags, then train_run."""
    options = _read_config(args.config) if args.config else {}
    for name in (*RUN_OPTIONS, *estimator_params()):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    if "data" not in options:
        raise ConfigError("Name the data to train on: a dataset (digits, mnist, ...) or a file.")
    run_kwargs = {k: options.pop(k) for k in RUN_OPTIONS if k in options}
    run = train_run(
        run_kwargs.pop("data"),
        params=options,
        overwrite=args.overwrite,
        pictures=not args.no_pictures,
        verbose=not args.quiet,
        **run_kwargs,
    )
    metrics = run.info["metrics"]
    info = run.info
    print(f"trained {info['model']} on {info['data']['name']}: {info['epochs']} epochs")
    _print_metrics(metrics)
    print(f"run folder: {run.folder}")
    if not args.no_pictures:
        print(f"report: {run.folder / 'report.html'}")


def cmd_evaluate(args) -> None:
    """vaekit evaluate: print (and optionally save) vaekit.evaluate's numbers."""
    run = open_run(args.run)
    X, _ = run.load_data(args.data, args.data_dir)
    metrics = evaluate(run.estimator, X, n_samples=args.samples)
    _print_metrics(metrics)
    if args.json:
        _write_output(Path(args.json), (json.dumps(metrics, indent=2) + "\n").encode())


def cmd_sample(args) -> None:
    """vaekit sample: new rows from a VAE run, as a picture or rows."""
    run = open_run(args.run)
    if not isinstance(run.estimator, VAE):
        raise ConfigError("Only a VAE can sample; this run holds an autoencoder.")
    rows = run.estimator.sample(args.n, mean=not args.draw, random_state=args.seed)
    _save_rows(
        rows, Path(args.out), run, lambda path: plots.image_grid(rows, run.image_shape, path)
    )


def cmd_reconstruct(args) -> None:
    """vaekit reconstruct: originals beside reconstructions, or the rows."""
    run = open_run(args.run)
    X, _ = run.load_data(args.data, args.data_dir)
    X = X[: args.n]
    recon = run.estimator.reconstruct(X)
    _save_rows(
        recon,
        Path(args.out),
        run,
        lambda path: plots.reconstruction_pairs(X, recon, run.image_shape, path),
    )


def cmd_encode(args) -> None:
    """vaekit encode: posterior means (codes) to .npy or .csv."""
    run = open_run(args.run)
    X, y = run.load_data(args.data, args.data_dir)
    Z = run.estimator.transform(X)
    out = Path(args.out)
    names = [f"z{i + 1}" for i in range(Z.shape[1])]
    if out.suffix == ".npy":
        _write_output(out, _npy_bytes(Z))
    elif out.suffix == ".csv":
        columns = [Z] if y is None else [Z, y[:, None]]
        header = ",".join(names + ([] if y is None else ["label"]))
        _write_output(
            out,
            _csv_bytes(
                np.hstack(columns),
                header,
                fmt=["%.6g"] * Z.shape[1] + ([] if y is None else ["%d"]),
            ),
        )
    else:
        raise ConfigError(f"Write embeddings to a .npy or .csv file, not {out.name}.")
    print(f"wrote {Z.shape[0]} embeddings of {Z.shape[1]} dimensions to {out}")


def cmd_interpolate(args) -> None:
    """vaekit interpolate: decoded straight lines between pairs of codes."""
    run = open_run(args.run)
    X, _ = run.load_data(args.data, args.data_dir)
    if len(X) < 2 * args.pairs:
        raise ConfigError(f"{args.pairs} pairs need {2 * args.pairs} rows; the data have {len(X)}.")
    strips = interpolate(
        run.estimator, X[0 : 2 * args.pairs : 2], X[1 : 2 * args.pairs : 2], args.steps
    )
    _save_image(
        Path(args.out), run, lambda path: plots.interpolation_strips(strips, run.image_shape, path)
    )


def cmd_traverse(args) -> None:
    """vaekit traverse: one latent unit swept at a time."""
    run = open_run(args.run)
    n_dims = min(run.estimator.n_components, args.dims)
    rows = traverse(run.estimator, n_dims, args.steps, args.span)
    _save_image(
        Path(args.out),
        run,
        lambda path: plots.traversal_grid(
            rows, run.image_shape, path, n_dims=n_dims, n_steps=args.steps
        ),
    )


def cmd_score(args) -> None:
    """vaekit score: anomaly scores, decisions and predictions per row."""
    run = open_run(args.run)
    X, y = run.load_data(args.data, args.data_dir)
    is_vae = isinstance(run.estimator, VAE)
    score_type = args.score_type or ("log_likelihood" if is_vae else "reconstruction")
    reference, _ = run.load_data(None, args.data_dir)  # the run's held-out rows: mostly normal
    detector = AnomalyDetector.from_fitted(
        run.estimator,
        reference,
        score_type=score_type,
        contamination=args.contamination,
        n_importance_samples=args.samples,
    )
    scores = detector.score_samples(X)
    columns = [np.arange(len(X)), scores, scores - detector.offset_, detector._predict_from(scores)]
    header = ["row", score_type, "decision", "prediction"]
    fmt = ["%d", "%.6f", "%.6f", "%d"]
    if y is not None:
        columns, header, fmt = [*columns, y], [*header, "label"], [*fmt, "%d"]
    out = Path(args.out)
    _write_output(out, _csv_bytes(np.column_stack(columns), ",".join(header), fmt))
    n_out = int((scores < detector.offset_).sum())
    print(f"wrote {len(X)} scores ({score_type}) to {out}; {n_out} below the offset")
    print(f"offset {detector.offset_:.4f}: the {args.contamination:.0%} quantile on held-out rows")


def cmd_report(args) -> None:
    """vaekit report: redraw a run's pictures and report.html."""
    from .runs import build_report

    run = open_run(args.run)
    X, y = run.load_data(None, args.data_dir)
    print(f"report: {build_report(run, X, y)}")


def cmd_compare(args) -> None:
    """vaekit compare: four models at one latent size, as tables and a plot."""
    dataset = load_dataset(args.data, data_dir=args.data_dir, binarize=args.binarize)
    (X_train, y_train), (X_test, y_test) = held_out(dataset, args.test_fraction, args.seed)
    params = {k: v for k in estimator_params() if (v := getattr(args, k, None)) is not None}
    defaults = data_defaults(dataset, args.binarize)
    n = params.pop("n_components", 2)
    models = default_models(n, args.seed, **(defaults | params))
    out = Path(args.out or f"compare-{dataset.name}")
    out.mkdir(parents=True, exist_ok=True)
    rows = compare(
        X_train, X_test, y_train, y_test, n_components=n, models=models, n_samples=args.samples
    )
    table = to_markdown(rows)
    if dataset.kind == "binary":
        table += (
            "\nThe data are binary: the VAE's log p(x) is a probability, PCA's and factor "
            "analysis's are Gaussian densities, so those columns do not compare.\n"
        )
    write_atomic(out / "comparison.md", table.encode())
    write_csv(rows, out / "comparison.csv")
    plots.comparison_bars(rows, out / "comparison.png", title=f"{dataset.name}, {n}-D latent")
    print(table)
    print(f"wrote {out / 'comparison.md'}, comparison.csv and comparison.png")


def cmd_demo(args) -> None:
    """vaekit demo: a 2-D VAE and an autoencoder on digits, with reports."""
    out = Path(args.out)
    runs = {
        model: train_run(
            "digits",
            model=model,
            params={"n_components": 2, "learning_rate": 3e-3},
            out=out / model,
            overwrite=True,
            verbose=not args.quiet,
        )
        for model in ("vae", "autoencoder")
    }
    for model, run in runs.items():
        print(f"\n{model} on digits ({run.info['epochs']} epochs):")
        _print_metrics(run.info["metrics"])
        print(f"report: {run.folder / 'report.html'}")


# ---- output helpers ----
METRIC_LABELS = {
    "n_examples": "examples",
    "log_likelihood": "log p(x), nats/example",
    "elbo": "ELBO, nats/example",
    "kl": "KL(q||p), nats/example",
    "active_units": "active latent units",
    "bits_per_dim": "bits/dim (-log p(x))",
    "squared_error": "squared error/example",
    "reconstruction_nll_at_code": "-log p(x|code), nats",
}


def _print_metrics(metrics: dict) -> None:
    """The numbers a person reads first, labelled with their units."""
    for key, label in METRIC_LABELS.items():
        if key not in metrics:
            continue
        value = metrics[key]
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        if key == "log_likelihood":
            text += f" ± {metrics['log_likelihood_sem']:.3f} (K={metrics['importance_samples']})"
        if key == "active_units":
            text += f" of {len(metrics['kl_per_unit'])}"
        print(f"  {label:<24}{text}")


def _write_output(path: Path, data: bytes) -> None:
    if not path.parent.is_dir():
        raise ConfigError(f"Cannot write {path}: folder {path.parent} does not exist.")
    write_atomic(path, data)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _csv_bytes(array: np.ndarray, header: str, fmt) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, array, delimiter=",", header=header, comments="", fmt=fmt)
    return buffer.getvalue().encode()


def _save_image(path: Path, run, draw) -> None:
    if path.suffix != ".png":
        raise ConfigError(f"Write the picture to a .png file, not {path.name}.")
    if run.image_shape is None:
        raise ConfigError("This run's data are not images, so there is no picture to draw.")
    if not path.parent.is_dir():
        raise ConfigError(f"Cannot write {path}: folder {path.parent} does not exist.")
    print(f"wrote {draw(path)}")


def _save_rows(rows: np.ndarray, path: Path, run, draw) -> None:
    if path.suffix == ".npy":
        _write_output(path, _npy_bytes(rows))
    elif path.suffix == ".csv":
        _write_output(
            path, _csv_bytes(rows, ",".join(f"x{i + 1}" for i in range(rows.shape[1])), "%.6g")
        )
    else:
        _save_image(path, run, draw)
        return
    print(f"wrote {len(rows)} rows to {path}")


def _read_config(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            options = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"No config file at {path}.") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML ({err}).") from None
    known = set(RUN_OPTIONS) | set(estimator_params())
    if unknown := sorted(set(options) - known):
        raise ConfigError(f"{path} has unknown keys: {', '.join(unknown)}.")
    params = estimator_params()
    return {k: tuple(v) if isinstance(v, list) and k in params else v for k, v in options.items()}


# ---- the parser ----
def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every command."""
    parser = argparse.ArgumentParser(
        prog="vaekit",
        description="Variational autoencoders from the shell: train, evaluate, sample, score.",
        epilog="Run 'vaekit COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    def data_options(sub, default="the run's held-out test rows") -> None:
        sub.add_argument(
            "--data",
            help=f"a dataset name, a .npy/.npz/.csv file or an image folder (default: {default})",
        )
        sub.add_argument(
            "--data-dir", help="folder holding dataset files (default: $VAEKIT_DATA or the cache)"
        )

    train = command(
        "train", cmd_train, "Train a VAE or an autoencoder and write a run folder with its report."
    )
    train.add_argument(
        "data",
        nargs="?",
        help="digits, mnist, fashion-mnist, binarized-mnist, a .npy, .npz or .csv file, a folder",
    )
    train.add_argument("--model", choices=sorted(MODELS), help="vae (default) or autoencoder")
    train.add_argument("--config", help="a TOML file with the same option names (flags win)")
    train.add_argument("--out", help="the run folder to write (default: runs/DATA-MODEL)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    train.add_argument(
        "--data-dir", help="folder holding dataset files (default: $VAEKIT_DATA or the cache)"
    )
    train.add_argument(
        "--binarize",
        help="none, dynamic (a fresh draw per epoch), fixed (one seeded draw), or a threshold",
    )
    train.add_argument(
        "--test-fraction",
        type=fraction,
        help="held-out fraction for data without a test split (default: 0.1)",
    )
    train.add_argument(
        "--seed", type=int, help="seeds the split, the weights and the training (default: 0)"
    )
    train.add_argument(
        "--no-pictures", action="store_true", help="skip the pictures and the report"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    add_estimator_flags(train)

    evaluate = command(
        "evaluate",
        cmd_evaluate,
        "Held-out log-likelihood (importance sampling), ELBO and reconstruction error.",
    )
    evaluate.add_argument("run")
    data_options(evaluate)
    evaluate.add_argument(
        "--samples", type=positive_int, default=1000, help="importance samples K (default: 1000)"
    )
    evaluate.add_argument("--json", help="also write the numbers to this JSON file")

    sample = command(
        "sample", cmd_sample, "Generate new examples: a picture (.png) or rows (.npy, .csv)."
    )
    sample.add_argument("run")
    sample.add_argument("-n", type=positive_int, default=64, help="how many (default: 64)")
    sample.add_argument("--out", default="samples.png", help="output file (default: samples.png)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    sample.add_argument(
        "--draw", action="store_true", help="draw x ~ p(x|z) instead of the decoder mean"
    )

    reconstruct = command(
        "reconstruct",
        cmd_reconstruct,
        "Reconstruct rows: originals beside reconstructions (.png), or rows (.npy, .csv).",
    )
    reconstruct.add_argument("run")
    data_options(reconstruct)
    reconstruct.add_argument(
        "-n", type=positive_int, default=16, help="how many rows (default: 16)"
    )
    reconstruct.add_argument(
        "--out", default="reconstructions.png", help="output file (default: reconstructions.png)"
    )

    encode = command(
        "encode",
        cmd_encode,
        "Embed rows (posterior means) into a .npy or .csv file, with labels when known.",
    )
    encode.add_argument("run")
    data_options(encode)
    encode.add_argument("--out", required=True, help="a .npy or .csv file")

    inter = command(
        "interpolate",
        cmd_interpolate,
        "Decode straight lines in latent space between pairs of rows.",
    )
    inter.add_argument("run")
    data_options(inter)
    inter.add_argument("--pairs", type=positive_int, default=4, help="how many pairs (default: 4)")
    inter.add_argument(
        "--steps", type=positive_int, default=10, help="images per strip (default: 10)"
    )
    inter.add_argument(
        "--out", default="interpolation.png", help="output picture (default: interpolation.png)"
    )

    trav = command("traverse", cmd_traverse, "Sweep one latent unit at a time, the others at zero.")
    trav.add_argument("run")
    trav.add_argument(
        "--dims", type=positive_int, default=8, help="at most this many units (default: 8)"
    )
    trav.add_argument("--steps", type=positive_int, default=9, help="images per unit (default: 9)")
    trav.add_argument(
        "--span", type=float, default=2.5, help="sweep z from -SPAN to SPAN (default: 2.5)"
    )
    trav.add_argument(
        "--out", default="traversal.png", help="output picture (default: traversal.png)"
    )

    score = command(
        "score",
        cmd_score,
        "Anomaly scores per row, to CSV: the score (higher is more normal), its distance to the "
        "offset (the contamination quantile on the run's held-out rows) and +1/-1.",
    )
    score.add_argument("run")
    data_options(score)
    score.add_argument(
        "--score-type",
        choices=SCORE_TYPES,
        help="log_likelihood (VAE default), elbo, or reconstruction (autoencoder default)",
    )
    score.add_argument(
        "--contamination", type=float, default=0.1, help="expected outlier fraction (default: 0.1)"
    )
    score.add_argument(
        "--samples", type=positive_int, default=1000, help="importance samples K (default: 1000)"
    )
    score.add_argument("--out", required=True, help="the CSV file to write")

    report = command("report", cmd_report, "Redraw a run's pictures and report.html.")
    report.add_argument("run")
    report.add_argument("--data-dir", help="folder holding dataset files")

    comp = command(
        "compare",
        cmd_compare,
        "Fit a VAE, an autoencoder, PCA and factor analysis at one latent size and compare them.",
    )
    comp.add_argument("data", help="a dataset name, a .npy/.npz/.csv file or an image folder")
    comp.add_argument("--out", help="folder for comparison.md/.csv/.png (default: compare-DATA)")
    comp.add_argument("--data-dir", help="folder holding dataset files")
    comp.add_argument("--binarize", default="none", choices=DATA_BINARIZE, help="as for train")
    comp.add_argument("--test-fraction", type=fraction, default=0.1, help="as for train")
    comp.add_argument("--seed", type=int, default=0, help="seeds the split and the models")
    comp.add_argument(
        "--samples", type=positive_int, default=1000, help="importance samples K (default: 1000)"
    )
    add_estimator_flags(comp)

    demo = command(
        "demo",
        cmd_demo,
        "Train a 2-D VAE and an autoencoder on digits (no network) and write their reports.",
    )
    demo.add_argument(
        "--out", default="runs/demo", help="folder for the two runs (default: runs/demo)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vaekit`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except VaekitError as err:
        print(f"vaekit: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(
            f"vaekit: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("vaekit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
