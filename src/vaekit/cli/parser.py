"""The argparse parser: one subcommand per task, each with help and an example."""

from __future__ import annotations

import argparse

from .. import __version__
from ..estimators.anomaly import SCORE_TYPES
from ..estimators.registry import MODELS
from ..runs import DATA_BINARIZE
from . import commands
from .flags import add_estimator_flags, fraction, positive_int

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


class _Parser(argparse.ArgumentParser):
    """argparse, reporting a usage mistake like every other error: one line, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"vaekit: error: {message}; see '{self.prog} --help'.\n")


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
        "train",
        commands.cmd_train,
        "Train a VAE or an autoencoder and write a run folder with its report.",
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
        help="none, dynamic (a fresh draw per epoch), fixed (one seeded draw), or a threshold "
        "(default: none)",
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
    train.add_argument(
        "--checkpoint-every",
        type=positive_int,
        help="epochs between checkpoints of the training state (default: 1)",
    )
    train.add_argument(
        "--resume",
        metavar="RUN",
        help="finish the interrupted run RUN from its last checkpoint (no other options)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    add_estimator_flags(train)

    evaluate = command(
        "evaluate",
        commands.cmd_evaluate,
        "Held-out log-likelihood (importance sampling), ELBO and reconstruction error.",
    )
    evaluate.add_argument("run", help="a run folder written by vaekit train")
    data_options(evaluate)
    evaluate.add_argument(
        "--samples", type=positive_int, default=1000, help="importance samples K (default: 1000)"
    )
    evaluate.add_argument("--json", help="also write the numbers to this JSON file")

    sample = command(
        "sample",
        commands.cmd_sample,
        "Generate new examples: a picture (.png) or rows (.npy, .csv).",
    )
    sample.add_argument("run", help="a run folder written by vaekit train")
    sample.add_argument("-n", type=positive_int, default=64, help="how many (default: 64)")
    sample.add_argument("--out", default="samples.png", help="output file (default: samples.png)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    sample.add_argument(
        "--draw", action="store_true", help="draw x ~ p(x|z) instead of the decoder mean"
    )

    reconstruct = command(
        "reconstruct",
        commands.cmd_reconstruct,
        "Reconstruct rows: originals beside reconstructions (.png), or rows (.npy, .csv).",
    )
    reconstruct.add_argument("run", help="a run folder written by vaekit train")
    data_options(reconstruct)
    reconstruct.add_argument(
        "-n", type=positive_int, default=16, help="how many rows (default: 16)"
    )
    reconstruct.add_argument(
        "--out", default="reconstructions.png", help="output file (default: reconstructions.png)"
    )

    encode = command(
        "encode",
        commands.cmd_encode,
        "Embed rows (posterior means) into a .npy or .csv file, with labels when known.",
    )
    encode.add_argument("run", help="a run folder written by vaekit train")
    data_options(encode)
    encode.add_argument("--out", required=True, help="a .npy or .csv file")

    inter = command(
        "interpolate",
        commands.cmd_interpolate,
        "Decode straight lines in latent space between pairs of rows.",
    )
    inter.add_argument("run", help="a run folder written by vaekit train")
    data_options(inter)
    inter.add_argument("--pairs", type=positive_int, default=4, help="how many pairs (default: 4)")
    inter.add_argument(
        "--steps", type=positive_int, default=10, help="images per strip (default: 10)"
    )
    inter.add_argument(
        "--out", default="interpolation.png", help="output picture (default: interpolation.png)"
    )

    trav = command(
        "traverse", commands.cmd_traverse, "Sweep one latent unit at a time, the others at zero."
    )
    trav.add_argument("run", help="a run folder written by vaekit train")
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
        commands.cmd_score,
        "Anomaly scores per row, to CSV: the score (higher is more normal), its distance to the "
        "offset (the contamination quantile on the run's held-out rows) and +1/-1.",
    )
    score.add_argument("run", help="a run folder written by vaekit train")
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

    report = command("report", commands.cmd_report, "Redraw a run's pictures and report.html.")
    report.add_argument("run", help="a run folder written by vaekit train")
    report.add_argument("--data-dir", help="folder holding dataset files")

    comp = command(
        "compare",
        commands.cmd_compare,
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
        commands.cmd_demo,
        "Train a 2-D VAE and an autoencoder on digits (no network) and write their reports.",
    )
    demo.add_argument(
        "--out", default="runs/demo", help="folder for the two runs (default: runs/demo)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser
