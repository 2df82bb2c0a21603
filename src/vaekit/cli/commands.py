"""The commands: each takes the parsed arguments and calls runs, estimators and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import plots
from ..compare import (
    check_models,
    compare,
    default_models,
    describe_preprocessing,
    to_markdown,
    write_csv,
)
from ..data import load_dataset
from ..engine.distributed import from_environment
from ..engine.sources import count
from ..estimators import AnomalyDetector
from ..evaluation import evaluate
from ..exceptions import ConfigError
from ..export import DECODER_FILE, DESCRIPTION_FILE, ENCODER_FILE, export_onnx
from ..io import write_atomic
from ..runs import (
    Run,
    binarize_settings,
    build_report,
    data_defaults,
    explore,
    held_out,
    in_memory,
    interpolate,
    is_finished,
    open_run,
    resume_run,
    train_run,
    traverse,
)
from ..runs.explorer import check_explorable
from ..runs.explorer_server import check_port
from ..zoo import load_pretrained, pretrained_models, pretrained_test_rows
from .flags import RUN_OPTIONS, estimator_params, read_config
from .launch import launch
from .output import (
    feature_columns,
    npy_bytes,
    print_metrics,
    print_training,
    quiet_training_warnings,
    save_image,
    save_rows,
    table_bytes,
    write_output,
)


def cmd_train(args) -> None:
    """vaekit train: config file, then flags, then train_run."""
    options = read_config(args.config) if args.config else {}
    given = vars(args)  # estimator flags are absent unless typed, so an explicit 'none' counts
    options |= {name: given[name] for name in estimator_params() if name in given}
    options |= {name: given[name] for name in RUN_OPTIONS if given.get(name) is not None}
    if args.resume is not None and (options or args.overwrite or args.no_pictures):
        raise ConfigError(
            "--resume goes on with the options the run was started with; pass no others."
        )
    if args.resume is None and "data" not in options:
        raise ConfigError(
            "Name the data to train on, a dataset (digits, mnist, ...) or a file: "
            "'vaekit train digits', say."
        )
    if args.nproc is not None and args.nproc > 1 and not from_environment().distributed:
        launch(args.nproc, args.argv)  # this command again, in N processes under torchrun
        return
    if args.nproc is not None and args.nproc != from_environment().local_size:
        raise ConfigError(
            f"--nproc {args.nproc} starts torchrun itself; under torchrun, which started "
            f"{from_environment().local_size} here, leave --nproc out."
        )
    if args.resume is not None:
        if is_finished(args.resume):  # a scheduler may issue the same command again
            print(f"{args.resume} has finished training; there is nothing to resume.")
            return
        with quiet_training_warnings():
            run = resume_run(args.resume, verbose=not args.quiet)
        _report_run(run)
        return
    run_kwargs = {k: options.pop(k) for k in RUN_OPTIONS if k in options}
    with quiet_training_warnings():
        run = train_run(
            run_kwargs.pop("data"),
            params=options,
            overwrite=args.overwrite,
            pictures=not args.no_pictures,
            verbose=not args.quiet,
            **run_kwargs,
        )
    _report_run(run)


def _report_run(run: Run) -> None:
    info = run.info
    print(f"trained {info['model']} on {info['data']['name']}: {count(info['epochs'], 'epoch')}")
    print_training(info)
    print_metrics(info["metrics"])
    print(f"run folder: {run.folder}")
    if (run.folder / "report.html").is_file():
        print(f"report: {run.folder / 'report.html'}")


def cmd_evaluate(args) -> None:
    """vaekit evaluate: print (and optionally save) vaekit.evaluate's numbers."""
    run = open_run(args.run)
    X, _, conditions = run.load_data(args.data, args.data_dir)
    metrics = evaluate(
        run.estimator, X, conditions, n_samples=args.samples, precision=args.precision
    )
    print_metrics(metrics)
    if args.json:
        write_output(Path(args.json), (json.dumps(metrics, indent=2) + "\n").encode())


def cmd_sample(args) -> None:
    """vaekit sample: new rows from a VAE run, as a picture or rows."""
    run = open_run(args.run)
    if not run.estimator.can_sample:
        raise ConfigError(f"This run's {run.info['model']} cannot sample; train a vae to sample.")
    condition = sample_condition(run, args.condition, args.n)
    n, ncols = args.n, None
    if condition is not None and np.ndim(condition) == 1 and run.condition == "label":
        n, ncols = len(condition), args.n  # -n of every class, a row of the picture each
    rows = run.estimator.sample(
        n, condition=condition, sampler=args.sampler, mean=not args.draw, random_state=args.seed
    )
    save_rows(
        rows,
        Path(args.out),
        run,
        lambda path: plots.image_grid(rows, run.image_shape, path, ncols=ncols),
    )


def sample_condition(run: Run, text: str | None, n: int):
    """``vaekit sample --condition`` as the estimator takes it: a class, every class ``n``
    times (a label run without the flag), covariate values, or None for an unconditional run."""
    if run.condition is None:
        if text is not None:
            raise ConfigError("--condition is for a conditional run; this run has none.")
        return None
    est = run.estimator
    if run.condition == "label":
        classes = est.classes_
        if text is None:
            return np.repeat(classes, n)
        match = [c for c in classes if str(c) == text.strip()]
        if not match:
            shown = ", ".join(str(c) for c in classes)
            raise ConfigError(
                f"--condition {text!r} is not a class of this run; its classes: {shown}."
            )
        return match[0]
    if text is None:
        raise ConfigError(
            f"This run is conditioned on {run.condition}; give the values to generate for as "
            f"--condition, {count(est.n_covariates_, 'number')} separated by commas."
        )
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != est.n_covariates_ or not np.isfinite(values).all():
        raise ConfigError(
            f"--condition needs {count(est.n_covariates_, 'finite number')} separated by commas "
            f"(for {run.condition}); got {text!r}."
        )
    return np.asarray(values)


def cmd_reconstruct(args) -> None:
    """vaekit reconstruct: originals beside reconstructions, or the rows."""
    run = open_run(args.run)
    X, _, conditions = run.load_data(args.data, args.data_dir)
    X = X[: args.n]
    recon = run.estimator.reconstruct(X, None if conditions is None else conditions[: args.n])
    out = Path(args.out)
    if args.with_originals:
        if out.suffix != ".csv":
            raise ConfigError(
                f"--with-originals writes a table; give --out a .csv file, not {out.name}."
            )
        columns = {"row": np.arange(len(X))}
        columns |= feature_columns(run, X) | feature_columns(run, recon, "_reconstructed")
        write_output(out, table_bytes(columns))
        print(f"wrote {len(X)} rows with their reconstructions to {out}")
        return
    save_rows(
        recon, out, run, lambda path: plots.reconstruction_pairs(X, recon, run.image_shape, path)
    )


def cmd_impute(args) -> None:
    """vaekit impute: the rows with every missing value filled in, to .npy or .csv."""
    out = Path(args.out)
    if out.suffix not in (".npy", ".csv"):
        raise ConfigError(f"Write the imputed rows to a .npy or .csv file, not {out.name}.")
    run = open_run(args.run)
    if getattr(run.estimator, "missing", None) != "ignore":
        raise ConfigError(
            "vaekit impute needs a run trained with --missing ignore; this run's model takes no "
            "missing values."
        )
    X, y, conditions = run.load_data(args.data, args.data_dir)
    filled = run.estimator.impute(
        X, n_samples=args.samples, y=conditions, sample=args.draw, random_state=args.seed
    )
    holes = int(np.isnan(X).sum())
    how = "draws from p(x_mis | x_obs)" if args.draw else "their posterior means"
    print(f"filled {count(holes, 'missing value')} with {how} (K={args.samples})")
    save_rows(filled, out, run, None, labels=y)


def cmd_encode(args) -> None:
    """vaekit encode: posterior means (codes) to .npy or .csv."""
    run = open_run(args.run)
    X, y, conditions = run.load_data(args.data, args.data_dir)
    Z = run.estimator.transform(X, conditions)
    out = Path(args.out)
    if out.suffix == ".npy":
        write_output(out, npy_bytes(Z))
    elif out.suffix == ".csv":
        columns = {f"z{i + 1}": Z[:, i] for i in range(Z.shape[1])}
        write_output(out, table_bytes(columns | ({} if y is None else {"label": y})))
    else:
        raise ConfigError(f"Write embeddings to a .npy or .csv file, not {out.name}.")
    print(f"wrote {Z.shape[0]} embeddings of {Z.shape[1]} dimensions to {out}")


def cmd_interpolate(args) -> None:
    """vaekit interpolate: decoded straight lines between pairs of codes."""
    run = open_run(args.run)
    run.require_unconditional("interpolate")
    run.require_codes_decode("interpolate")
    X, _, _ = run.load_data(args.data, args.data_dir)
    if len(X) < 2 * args.pairs:
        raise ConfigError(
            f"--pairs {args.pairs} needs {2 * args.pairs} rows; the data have {len(X)}."
        )
    strips = interpolate(
        run.estimator, X[0 : 2 * args.pairs : 2], X[1 : 2 * args.pairs : 2], args.steps
    )
    save_image(
        Path(args.out), run, lambda path: plots.interpolation_strips(strips, run.image_shape, path)
    )


def cmd_traverse(args) -> None:
    """vaekit traverse: one latent unit swept at a time."""
    run = open_run(args.run)
    run.require_unconditional("traverse")
    run.require_codes_decode("traverse")
    n_dims = min(run.estimator.n_components, args.dims)
    rows = traverse(run.estimator, n_dims, args.steps, args.span)
    save_image(
        Path(args.out),
        run,
        lambda path: plots.traversal_grid(
            rows, run.image_shape, path, n_dims=n_dims, n_steps=args.steps
        ),
    )


def cmd_score(args) -> None:
    """vaekit score: anomaly scores, decisions and predictions per row."""
    run = open_run(args.run)
    run.require_unconditional("score")
    X, y, _ = run.load_data(args.data, args.data_dir)
    density = run.estimator.density_model
    score_type = args.score_type or ("log_likelihood" if density else "reconstruction")
    if score_type != "reconstruction" and not density:
        raise ConfigError(
            f"--score-type {score_type} needs a vae run; this run's {run.info['model']} scores "
            "with --score-type reconstruction."
        )
    reference, _, _ = run.load_data(None, args.data_dir)  # the run's held-out rows: mostly normal
    detector = AnomalyDetector.from_fitted(
        run.estimator,
        reference,
        score_type=score_type,
        contamination=args.contamination,
        n_importance_samples=args.samples,
    )
    scores = detector.reference_scores_ if args.data is None else detector.score_samples(X)
    columns = {
        "row": np.arange(len(X)),
        score_type: np.char.mod("%.6f", scores),
        "decision": np.char.mod("%.6f", scores - detector.offset_),
        "prediction": detector._predict_from(scores),
    }
    out = Path(args.out)
    write_output(out, table_bytes(columns | ({} if y is None else {"label": y})))
    n_out = int((scores < detector.offset_).sum())
    print(f"wrote {len(X)} scores ({score_type}) to {out}; {n_out} below the offset")
    print(f"offset {detector.offset_:.4f}: the {args.contamination:.0%} quantile on held-out rows")


def cmd_report(args) -> None:
    """vaekit report: redraw a run's pictures and report.html."""

    run = open_run(args.run)
    X, y, conditions = run.load_data(None, args.data_dir)
    print(f"report: {build_report(run, X, y, conditions)}")


def cmd_export(args) -> None:
    """vaekit export: the run's encoder and decoder as ONNX graphs, with model.json."""
    out = Path(args.out) if args.out is not None else Path(args.run) / "onnx"
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out} already exists; choose another --out or pass --overwrite.")
    run = open_run(args.run)
    export_onnx(run.estimator, out, overwrite=args.overwrite)
    print(f"wrote {ENCODER_FILE}, {DECODER_FILE} and {DESCRIPTION_FILE} to {out}")


def cmd_explore(args) -> None:
    """vaekit explore: serve the run's explorer page until Ctrl-C."""
    check_port(args.port)  # the cheap refusals before any data is read
    if (args.run is None) == (args.pretrained is None):
        raise ConfigError("Give vaekit explore one model: a run folder or --pretrained NAME.")
    if args.pretrained is not None:
        if args.data is not None:
            raise ConfigError("--pretrained explores the test images shipped with the model.")
        model = load_pretrained(args.pretrained)
        X, y = pretrained_test_rows()
        shape = tuple(pretrained_models()[args.pretrained]["image_shape"])
        explore(model, X, y, image_shape=shape, port=args.port, open_browser=not args.no_browser)
        return
    run = open_run(args.run)
    check_explorable(run.estimator)
    X, y, conditions = run.load_data(args.data, args.data_dir)
    explore(run, X, y, conditions=conditions, port=args.port, open_browser=not args.no_browser)


def cmd_compare(args) -> None:
    """vaekit compare: four models at one latent size, as tables and a plot."""
    params = {k: vars(args)[k] for k in estimator_params() if k in vars(args)}
    n = params.pop("n_components", 2)
    mode, binarized = binarize_settings(args.binarize)  # as for train, before any data is read
    check_models(n, args.seed, **(binarized | params))
    dataset = load_dataset(args.data, data_dir=args.data_dir, binarize=mode, seed=args.seed)
    (X_train, y_train), (X_test, y_test) = held_out(dataset, args.test_fraction, args.seed)
    X_train = in_memory(X_train)  # PCA and factor analysis need the rows in memory
    settings = data_defaults(dataset, mode, params.get("likelihood")) | binarized | params
    models = default_models(n, args.seed, **settings)  # one preprocessing for all four
    out = Path(args.out or f"compare-{dataset.name}")
    out.mkdir(parents=True, exist_ok=True)
    rows = compare(
        X_train, X_test, y_train, y_test, n_components=n, models=models, n_samples=args.samples
    )
    seen = describe_preprocessing(
        dataset.name,
        dataset.kind,
        X_train.shape[1],
        binarize=args.binarize,
        standardize=settings.get("standardize", False),
    )
    table = to_markdown(rows, seen)
    write_atomic(out / "comparison.md", table.encode())
    write_csv(rows, out / "comparison.csv")
    plots.comparison_bars(rows, out / "comparison.png", title=f"{dataset.name}, {n}-D latent")
    print(table)
    print(f"wrote {out / 'comparison.md'}, comparison.csv and comparison.png")


def cmd_demo(args) -> None:
    """vaekit demo: a 2-D VAE and an autoencoder on digits, with reports."""
    out = Path(args.out)
    with quiet_training_warnings():
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
        print(f"\n{model} on digits ({count(run.info['epochs'], 'epoch')}):")
        print_training(run.info)
        print_metrics(run.info["metrics"])
        print(f"report: {run.folder / 'report.html'}")
