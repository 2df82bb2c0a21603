"""The argparse parser: one subcommand per task, each with help and an example."""

from __future__ import annotations

import argparse
import difflib

from .. import __version__
from ..estimators.anomaly import SCORE_TYPES
from ..estimators.registry import MODELS
from ..estimators.vae import SAMPLERS
from ..runs import DATA_BINARIZE
from . import commands
from .flags import add_estimator_flags, fraction, outlier_fraction, positive_int

DATA_HELP = (
    "a dataset name (digits, mnist, fashion-mnist, binarized-mnist), a .npy, .npz, .csv or "
    ".h5ad file (FILE.h5ad#COLUMN takes that obs column as labels), or a folder of PNG/JPEG "
    "images"
)
RUN_HELP = "a run folder written by 'vaekit train' (holds run.json and the model)"

EXAMPLES = {
    "train": "vaekit train digits --n-components 2 --max-epochs 50 --out runs/digits",
    "evaluate": "vaekit evaluate runs/digits --samples 1000",
    "sample": "vaekit sample runs/digits -n 64 --out samples.png",
    "reconstruct": "vaekit reconstruct runs/digits -n 16 --out reconstructions.png",
    "encode": "vaekit encode runs/digits --out embeddings.csv",
    "impute": "vaekit impute runs/table --data rows_with_holes.csv --out filled.csv",
    "interpolate": "vaekit interpolate runs/digits --pairs 4 --steps 10 --out interpolation.png",
    "traverse": "vaekit traverse runs/digits --steps 9 --out traversal.png",
    "score": "vaekit score runs/digits --data my_rows.csv --out scores.csv",
    "report": "vaekit report runs/digits",
    "export": "vaekit export runs/digits --format onnx --out digits-onnx",
    "explore": "vaekit explore runs/digits --port 8050",
    "compare": "vaekit compare digits --n-components 2 --out compare-digits",
    "demo": "vaekit demo --out runs/demo",
}


class _Parser(argparse.ArgumentParser):
    """argparse, reporting a usage mistake like every other error: one line, exit status 2,
    pointing to the help of the command it was made in, with the closest flags to a misspelt
    one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str):
        self.exit(2, f"vaekit: error: {message}; see '{self.prog} --help'.\n")

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self.commands.get(getattr(namespace, "command", None), self)
            command.error(f"unrecognized arguments: {' '.join(extras)}{_suggest(extras, command)}")
        return namespace


def _suggest(extras: list[str], parser: argparse.ArgumentParser) -> str:
    """' (did you mean --max-epochs?)' for the flags closest to the unknown ones, if any."""
    known = [flag for action in parser._actions for flag in action.option_strings]
    close = []
    for word in extras:
        if word.startswith("--"):
            close += difflib.get_close_matches(word.split("=")[0], known, n=3, cutoff=0.7)
    close = list(dict.fromkeys(close))
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every command."""
    parser = _Parser(
        prog="vaekit",
        description="Variational autoencoders from the shell: train, evaluate, sample, score.",
        epilog="Run 'vaekit COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {EXAMPLES[name]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        parser.commands[name] = sub
        return sub

    def data_options(sub, default="the run's held-out test rows") -> None:
        sub.add_argument(
            "--data",
            metavar="DATA",
            help=f"{DATA_HELP} (default: {default})",
        )
        sub.add_argument(
            "--data-dir", help="folder holding dataset files (default: $VAEKIT_DATA or the cache)"
        )

    def samples_option(sub) -> None:
        sub.add_argument(
            "--samples",
            type=positive_int,
            default=1000,
            metavar="K",
            help="importance samples per row for log p(x) (default: 1000)",
        )

    train = command(
        "train",
        commands.cmd_train,
        "Train a VAE or an autoencoder and write a run folder with its report.",
    )
    train.add_argument(
        "data",
        nargs="?",
        help=f"the data to train on: {DATA_HELP}",
    )
    train.add_argument(
        "--model",
        choices=sorted(MODELS),
        help="vae (default), autoencoder, semi_supervised (a classifier that learns from few "
        "labels: see --labels-kept), or arbitrary_conditional (fills in missing values from "
        "the given ones, NaN always missing: see vaekit impute)",
    )
    train.add_argument(
        "--config", metavar="FILE", help="a TOML file with the same option names (flags win)"
    )
    train.add_argument(
        "--out", metavar="RUN", help="the run folder to write (default: runs/DATA-MODEL)"
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    train.add_argument(
        "--data-dir", help="folder holding dataset files (default: $VAEKIT_DATA or the cache)"
    )
    train.add_argument(
        "--binarize",
        metavar="{none,dynamic,fixed,THRESHOLD}",
        help="none keeps the values; dynamic draws a fresh Bernoulli binarisation of every "
        "training batch, fixed one seeded draw (both for intensities in [0, 1]); a number "
        "thresholds the data at it, x > THRESHOLD, and trains a bernoulli likelihood "
        "(default: none)",
    )
    train.add_argument(
        "--test-fraction",
        type=fraction,
        metavar="FRACTION",
        help="held-out fraction for data without a test split (default: 0.1)",
    )
    train.add_argument(
        "--seed", type=int, help="seeds the split, the weights and the training (default: 0)"
    )
    train.add_argument(
        "--no-pictures", action="store_true", help="skip the pictures and the report"
    )
    train.add_argument(
        "--checkpoint-every",
        type=positive_int,
        metavar="N",
        help="epochs between checkpoints of the training state (default: 1)",
    )
    train.add_argument(
        "--log-dir",
        metavar="DIR",
        help="write TensorBoard logs into DIR: every epoch's losses, learning rate and KL "
        "weight, pictures of image data and the held-out rows' codes for the projector; a "
        "resumed run goes on logging there (needs pip install 'vaekit[tensorboard]'; "
        "default: none)",
    )
    train.add_argument(
        "--resume",
        metavar="RUN",
        help="finish the interrupted run RUN from its last checkpoint (no other options)",
    )
    train.add_argument(
        "--condition",
        metavar="{label,COLUMN[,COLUMN...]}",
        help="train a conditional VAE: on the data's labels (label), or on these columns of a "
        "table, taken out of its features as covariates (default: none)",
    )
    train.add_argument(
        "--labels-kept",
        type=positive_int,
        metavar="N",
        help="for --model semi_supervised: keep the labels of N training rows, the same number "
        "of each class, drawn by --seed, and train on the others unlabelled (default: every "
        "label the data give; -1 marks an unlabelled row)",
    )
    train.add_argument(
        "--quiet", action="store_true", help="no progress bar or progress lines while training"
    )
    train.add_argument(
        "--nproc",
        type=positive_int,
        metavar="N",
        help="train data-parallel in N processes on this machine, started with torchrun (one "
        "per GPU, or sharing the CPU cores); --batch-size stays the batch of all of them "
        "together (default: 1)",
    )
    add_estimator_flags(train)

    evaluate = command(
        "evaluate",
        commands.cmd_evaluate,
        "Held-out log-likelihood (importance sampling), ELBO and reconstruction error.",
    )
    evaluate.add_argument("run", help=RUN_HELP)
    data_options(evaluate)
    samples_option(evaluate)
    evaluate.add_argument(
        "--precision",
        choices=("fp64", "fp32"),
        default="fp64",
        help="the dtype of the networks for log p(x): fp64, the reference, or fp32, about 1.8 "
        "times faster on a CPU and within 2e-5 nats per row on MNIST (default: fp64)",
    )
    evaluate.add_argument("--json", help="also write the numbers to this JSON file")

    sample = command(
        "sample",
        commands.cmd_sample,
        "Generate new examples: a picture (.png) or rows (.npy, .csv).",
    )
    sample.add_argument("run", help=RUN_HELP)
    sample.add_argument(
        "-n", type=positive_int, default=64, help="how many examples to generate (default: 64)"
    )
    sample.add_argument(
        "--out",
        default="samples.png",
        help="a grid of images (.png), or the rows (.npy, images in their own shape; .csv, with "
        "the table's column names) (default: samples.png)",
    )
    sample.add_argument("--seed", type=int, default=0, help="seeds the latent draws (default: 0)")
    sample.add_argument(
        "--condition",
        metavar="CLASS|VALUES",
        help="for a conditional run, what to generate: a class of a label run (without it, -n "
        "of every class, one row of the picture per class), or the covariate values of a "
        "column run, separated by commas",
    )
    sample.add_argument(
        "--draw", action="store_true", help="draw x ~ p(x|z) instead of the decoder mean"
    )
    sample.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="prior",
        help="where z comes from: the prior p(z), or gmm, the Gaussian mixture fitted after "
        "training to the codes of the training rows, which often draws more typical examples "
        "(default: prior)",
    )

    reconstruct = command(
        "reconstruct",
        commands.cmd_reconstruct,
        "Reconstruct rows: originals beside reconstructions (.png), or rows (.npy, .csv).",
    )
    reconstruct.add_argument("run", help=RUN_HELP)
    data_options(reconstruct)
    reconstruct.add_argument(
        "-n", type=positive_int, default=16, help="how many rows, from the first (default: 16)"
    )
    reconstruct.add_argument(
        "--out",
        default="reconstructions.png",
        help="a picture of originals above reconstructions (.png), or the reconstructed rows "
        "(.npy, images in their own shape; .csv, with the table's column names) "
        "(default: reconstructions.png)",
    )
    reconstruct.add_argument(
        "--with-originals",
        action="store_true",
        help="for a .csv: each row's id, its original values, then its reconstruction "
        "(columns NAME and NAME_reconstructed)",
    )

    impute = command(
        "impute",
        commands.cmd_impute,
        "Fill in missing values (NaN, or a CSV's empty or NA cells) with a run trained with "
        "--missing ignore (MIWAE) or --model arbitrary_conditional: each becomes its mean "
        "given the row's observed values, or a draw (--draw).",
    )
    impute.add_argument("run", help=RUN_HELP)
    data_options(impute)
    impute.add_argument(
        "--out", required=True, help="a .npy or .csv file (with the table's column names)"
    )
    impute.add_argument(
        "--samples",
        type=positive_int,
        default=1000,
        metavar="K",
        help="importance samples per row (default: 1000)",
    )
    impute.add_argument(
        "--draw",
        action="store_true",
        help="draw each missing value from p(x_mis | x_obs) instead of taking its mean: one "
        "imputation of several (vary --seed)",
    )
    impute.add_argument(
        "--seed", type=int, default=0, help="seeds the draws of z and of --draw (default: 0)"
    )

    encode = command(
        "encode",
        commands.cmd_encode,
        "Embed rows (posterior means) into a .npy or .csv file, with labels when known.",
    )
    encode.add_argument("run", help=RUN_HELP)
    data_options(encode)
    encode.add_argument(
        "--out", required=True, help="a .npy file, or a .csv file with z1, z2, ... and the label"
    )

    inter = command(
        "interpolate",
        commands.cmd_interpolate,
        "Decode straight lines in latent space between pairs of rows.",
    )
    inter.add_argument("run", help=RUN_HELP)
    data_options(inter)
    inter.add_argument(
        "--pairs", type=positive_int, default=4, help="how many pairs of rows (default: 4)"
    )
    inter.add_argument(
        "--steps",
        type=positive_int,
        default=10,
        help="decoded points on each line, ends included (default: 10)",
    )
    inter.add_argument(
        "--out", default="interpolation.png", help="output picture (default: interpolation.png)"
    )

    trav = command(
        "traverse", commands.cmd_traverse, "Sweep one latent unit at a time, the others at zero."
    )
    trav.add_argument("run", help=RUN_HELP)
    trav.add_argument(
        "--dims",
        type=positive_int,
        default=8,
        help="sweep at most this many latent units (default: 8)",
    )
    trav.add_argument(
        "--steps", type=positive_int, default=9, help="decoded points per unit (default: 9)"
    )
    trav.add_argument(
        "--span", type=float, default=2.5, help="sweep z from -SPAN to SPAN (default: 2.5)"
    )
    trav.add_argument(
        "--out", default="traversal.png", help="output picture (default: traversal.png)"
    )

    score = command(
        "score",
        commands.cmd_score,
        "Anomaly scores per row, to CSV: the score (higher is more normal), its distance to the "
        "offset (the contamination quantile on the run's held-out rows) and +1/-1.",
    )
    score.add_argument("run", help=RUN_HELP)
    data_options(score)
    score.add_argument(
        "--score-type",
        choices=SCORE_TYPES,
        help="log_likelihood (VAE default), elbo, or reconstruction (autoencoder default)",
    )
    score.add_argument(
        "--contamination",
        type=outlier_fraction,
        default=0.1,
        metavar="FRACTION",
        help="the expected fraction of outliers, in (0, 0.5]: the offset is that quantile of the "
        "held-out rows' scores (default: 0.1)",
    )
    samples_option(score)
    score.add_argument(
        "--out",
        required=True,
        help="the .csv file to write: row, score, decision, prediction (and label)",
    )

    report = command("report", commands.cmd_report, "Redraw a run's pictures and report.html.")
    report.add_argument("run", help=RUN_HELP)
    report.add_argument("--data-dir", help="folder holding dataset files")

    export = command(
        "export",
        commands.cmd_export,
        "Write a run's encoder and decoder as ONNX graphs, with model.json describing their "
        "inputs, outputs and likelihood (needs pip install 'vaekit[onnx]').",
    )
    export.add_argument("run", help=RUN_HELP)
    export.add_argument(
        "--format",
        choices=["onnx"],
        default="onnx",
        help="the format to write: onnx, the one there is so far (default: onnx)",
    )
    export.add_argument(
        "--out",
        metavar="DIR",
        help="the folder to write encoder.onnx, decoder.onnx and model.json to (default: RUN/onnx)",
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")

    explore = command(
        "explore",
        commands.cmd_explore,
        "Explore a run's latent space in a web page on 127.0.0.1: the held-out rows' codes as "
        "a map, the decoded example at any point (click or drag), a slider per latent unit, "
        "interpolations, the condition of a conditional run.",
    )
    explore.add_argument("run", nargs="?", help=f"{RUN_HELP}; or give --pretrained")
    explore.add_argument(
        "--pretrained",
        metavar="NAME",
        help="explore a trained model shipped with vaekit instead of a run, on the MNIST test "
        "images shipped with it (offline): mnist-vae-2d or mnist-vae-50d",
    )
    data_options(explore)
    explore.add_argument(
        "--port",
        type=int,
        default=0,
        help="the port on 127.0.0.1 to serve the page on (default: 0, any free port)",
    )
    explore.add_argument(
        "--no-browser",
        action="store_true",
        help="only print the page's address; do not open it in the web browser",
    )

    comp = command(
        "compare",
        commands.cmd_compare,
        "Fit a VAE, an autoencoder, PCA and factor analysis at one latent size and compare them.",
    )
    comp.add_argument("data", help=f"the data to compare the models on: {DATA_HELP}")
    comp.add_argument(
        "--out",
        metavar="FOLDER",
        help="folder for comparison.md/.csv/.png (default: compare-DATA)",
    )
    comp.add_argument("--data-dir", help="folder holding dataset files")
    comp.add_argument(
        "--binarize",
        default="none",
        metavar="{none,dynamic,fixed,THRESHOLD}",
        help=f"{', '.join(DATA_BINARIZE)} or a threshold, as for train; every model sees the "
        "same binarised rows (default: none)",
    )
    comp.add_argument(
        "--test-fraction",
        type=fraction,
        default=0.1,
        metavar="FRACTION",
        help="held-out fraction for data without a test split (default: 0.1)",
    )
    comp.add_argument(
        "--seed", type=int, default=0, help="seeds the split and the models (default: 0)"
    )
    samples_option(comp)
    add_estimator_flags(comp)

    demo = command(
        "demo",
        commands.cmd_demo,
        "Train a 2-D VAE and an autoencoder on digits (no network) and write their reports.",
    )
    demo.add_argument(
        "--out", default="runs/demo", help="folder for the two runs (default: runs/demo)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser
