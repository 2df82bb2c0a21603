"""Data-parallel training throughput: ``VAE.fit`` in one process against several under torchrun.

Trains Burda et al.'s MNIST VAE (784-200-200-50, tanh, Bernoulli, dynamic binarisation; the
model of mnist_nll.py) with ``vaekit.VAE.fit`` in each configuration PROCESSESxTHREADS: one
process per configuration started by plain Python, several by ``torchrun --standalone``, each
with OMP_NUM_THREADS and ``torch.set_num_threads`` set to THREADS, each configuration in a fresh
subprocess. ``batch_size`` is the global batch, so every configuration takes the same steps on
the same rows. Where CUDA is available the same fit runs on one GPU and on all of them.

The time of an epoch is the one ``fit`` records (``history_[i]["seconds"]``: the epoch's
training, no validation split); the script prints the median over the epochs after the first
(a warm-up), the training rows per second, the speed-up over the first configuration of the
same device (1x1, and 1 GPU), the scaling efficiency (speed-up per core or GPU used, relative
to that first configuration), the fraction of the fp32 matmul peak of that many cores measured
in the same run (the model's matrix products only), and the final training loss, which shows
that the configurations train the same recipe. The data are synthetic and MNIST-shaped by
default (seeded noisy copies of ten random prototypes); ``--data-dir`` trains on real MNIST.

Run: .venv/bin/python benchmarks/ddp_speed.py [--configs 1x1,1x2,2x1] [--data-dir ../shared/data]
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from mnist_nll import burda_vae
from sklearn.exceptions import ConvergenceWarning
from train_speed import matmul_peak_gflops

from vaekit.data import load_dataset
from vaekit.engine.distributed import from_environment

# (inputs, outputs) of the 784-200-200-50 VAE's linear layers; 200 -> 100 gives mean and
# log-variance.
LAYERS = [(784, 200), (200, 200), (200, 100), (50, 200), (200, 200), (200, 784)]
FORWARD_MACS = sum(n_in * n_out for n_in, n_out in LAYERS)  # multiply-adds per example
# Backward computes every weight gradient and every input gradient but the first layer's (the data
# needs none); 2 FLOPs per multiply-add.
FLOPS_PER_EXAMPLE = 2 * (3 * FORWARD_MACS - LAYERS[0][0] * LAYERS[0][1])


@dataclass(frozen=True)
class Config:
    """One configuration: ``processes`` processes of ``threads`` threads on ``device``."""

    processes: int
    threads: int
    device: str = "cpu"

    @property
    def label(self) -> str:
        """``PxT`` on the CPU, ``N GPU(s)`` on CUDA."""
        if self.device == "cuda":
            return f"{self.processes} GPU{'s' if self.processes > 1 else ''}"
        return f"{self.processes}x{self.threads}"

    @property
    def units(self) -> int:
        """The cores (CPU) or GPUs (CUDA) the configuration uses."""
        return self.processes * (self.threads if self.device == "cpu" else 1)


def parse_configs(text: str) -> list[Config]:
    """CPU configurations from a comma-separated list of ``PROCESSESxTHREADS``.

    Parameters
    ----------
    text : str
        For instance ``"1x1,1x2,2x1"``.

    Returns
    -------
    list of Config
        One per item, in the order given.
    """
    configs = []
    for item in text.split(","):
        processes, _, threads = item.strip().partition("x")
        if not (processes.isdigit() and threads.isdigit() and int(processes) * int(threads)):
            raise argparse.ArgumentTypeError(f"{item!r} is not PROCESSESxTHREADS, e.g. 2x1")
        configs.append(Config(int(processes), int(threads)))
    return configs


def gpu_configs() -> tuple[list[Config], str]:
    """The GPU configurations this machine can run, and a note on those it cannot.

    Returns
    -------
    configs : list of Config
        1 GPU, and all GPUs when there are several; empty without CUDA.
    note : str
        Which GPU rows were not run and why; empty when none was left out.
    """
    if not torch.cuda.is_available():
        return [], "CUDA is not available: the GPU rows were not run."
    count = torch.cuda.device_count()
    configs = [Config(1, 1, "cuda")]
    if count == 1:
        return configs, "One GPU: the several-GPU row was not run."
    return [*configs, Config(count, 1, "cuda")], ""


def synthetic_mnist(rows: int, seed: int = 0) -> np.ndarray:
    """MNIST-shaped intensities in [0, 1]: noisy copies of ten random, mostly dark prototypes.

    Parameters
    ----------
    rows : int
        Number of images.
    seed : int, default=0
        Seed of the prototypes, the choice among them and the noise.

    Returns
    -------
    ndarray of shape (rows, 784), float32
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 784), dtype=np.float32) ** 4
    noise = 0.1 * rng.standard_normal((rows, 784), dtype=np.float32)
    return np.clip(prototypes[rng.integers(10, size=rows)] + noise, 0, 1)


def training_rows(rows: int, data_dir: str | None) -> np.ndarray:
    """The first ``rows`` MNIST training images from ``data_dir``, or synthetic ones without it.

    Parameters
    ----------
    rows : int
        Number of images (MNIST has 60,000).
    data_dir : str or None
        MNIST's folder (downloaded there when absent); None for synthetic data.

    Returns
    -------
    ndarray of shape (n, 784)
    """
    if data_dir is None:
        return synthetic_mnist(rows)
    return load_dataset("mnist", data_dir=data_dir, binarize="dynamic").train[:rows]


def worker(args: argparse.Namespace) -> None:
    """Fit the VAE in this process (one rank under torchrun); rank 0 writes the results.

    Parameters
    ----------
    args : argparse.Namespace
        The benchmark's options and the hidden ``threads``, ``device`` and ``out`` (the JSON
        file that gets the per-epoch seconds, the final training loss and the row count).
    """
    torch.set_num_threads(args.threads)
    X = training_rows(args.rows, args.data_dir)
    vae = burda_vae(
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        patience=None,
        validation_fraction=0,
        device=args.device,
    )
    with warnings.catch_warnings():  # a short benchmark ends mid-descent on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    if from_environment().main:
        result = {
            "seconds": [record["seconds"] for record in vae.history_],
            "loss": vae.history_[-1]["loss"],
            "rows": len(X),
        }
        Path(args.out).write_text(json.dumps(result))


def worker_command(config: Config, args: argparse.Namespace, out: Path) -> list[str]:
    """The command line that runs ``config``: this script with ``--worker``, under torchrun
    when it takes several processes.

    Parameters
    ----------
    config : Config
        The configuration to run.
    args : argparse.Namespace
        The benchmark's options, passed on to the worker.
    out : Path
        Where rank 0 writes its results.

    Returns
    -------
    list of str
    """
    script = [
        str(Path(__file__).resolve()),
        "--worker",
        f"--threads={config.threads}",
        f"--device={config.device}",
        f"--out={out}",
        f"--rows={args.rows}",
        f"--epochs={args.epochs}",
        f"--batch-size={args.batch_size}",
        *([f"--data-dir={args.data_dir}"] if args.data_dir else []),
    ]
    if config.processes == 1:
        return [sys.executable, *script]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    return [torchrun, "--standalone", f"--nproc-per-node={config.processes}", *script]


def run_config(config: Config, args: argparse.Namespace, folder: Path) -> dict:
    """Run ``config`` in a fresh subprocess and read back rank 0's results.

    Parameters
    ----------
    config : Config
        The configuration to run.
    args : argparse.Namespace
        The benchmark's options.
    folder : Path
        A scratch folder for the results file.

    Returns
    -------
    dict
        ``seconds`` (per epoch), ``loss`` (the last epoch's training loss) and ``rows``.
    """
    out = folder / f"{config.device}-{config.processes}x{config.threads}.json"
    environment = os.environ | {"OMP_NUM_THREADS": str(config.threads)}
    command = worker_command(config, args, out)
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{config.label} failed ({shlex.join(command)}):\n{done.stdout}{done.stderr}")
    return json.loads(out.read_text())


def git_commit() -> str:
    """The short hash of the checkout's HEAD, marked when the working tree has changes.

    Returns
    -------
    str
        ``"unknown"`` outside a git checkout or without git.
    """
    here = Path(__file__).parent

    def git(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *command], cwd=here, capture_output=True, text=True)

    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" (with uncommitted changes)" if changed else "")


def cpu_peaks(configs: list[Config]) -> dict[int, float]:
    """The fp32 matmul peak in GFLOP/s of every core count the CPU configurations use.

    Parameters
    ----------
    configs : list of Config
        The CPU configurations.

    Returns
    -------
    dict
        Cores -> GFLOP/s, measured in this process with that many threads.
    """
    peaks = {}
    for cores in sorted({config.units for config in configs}):
        torch.set_num_threads(cores)
        peaks[cores] = matmul_peak_gflops(torch.float32)
    return peaks


def rows_per_second(result: dict) -> float:
    """Training rows per second at the median epoch time after the first epoch.

    Parameters
    ----------
    result : dict
        A configuration's results (``run_config``).

    Returns
    -------
    float
    """
    return result["rows"] / statistics.median(result["seconds"][1:])


def table_row(
    config: Config, result: dict, baseline: tuple[float, int], peaks: dict[int, float]
) -> str:
    """The Markdown row of one configuration.

    Parameters
    ----------
    config : Config
        The configuration.
    result : dict
        Its results (``run_config``).
    baseline : tuple of (float, int)
        Rows per second and units (cores or GPUs) of the configuration it is compared with.
    peaks : dict
        Cores -> fp32 matmul GFLOP/s (``cpu_peaks``); GPU rows get no share of the peak.

    Returns
    -------
    str
    """
    rate = rows_per_second(result)
    seconds = result["rows"] / rate
    speedup = rate / baseline[0]
    efficiency = speedup * baseline[1] / config.units
    share = ""
    if config.device == "cpu":
        share = f"{rate * FLOPS_PER_EXAMPLE / 1e9 / peaks[config.units]:.0%}"
    return (
        f"| {config.label} | {config.units} | {seconds:.3f} | {rate:,.0f} | {speedup:.2f}x "
        f"| {efficiency:.0%} | {share} | {result['loss']:.2f} |"
    )


def benchmark(args: argparse.Namespace) -> None:
    """Run every configuration and print the table.

    Parameters
    ----------
    args : argparse.Namespace
        The benchmark's options.
    """
    n_rows = len(training_rows(args.rows, args.data_dir))  # downloads MNIST once, if asked for
    gpus, gpu_note = gpu_configs()
    peaks = cpu_peaks(args.configs)
    data = f"MNIST from {args.data_dir}" if args.data_dir else "synthetic MNIST-shaped data"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"command: {shlex.join(['python', *sys.argv])}")
    print(f"git commit: {git_commit()}; torch {torch.__version__}")
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    print(f"CPUs: {os.cpu_count()} ({usable} usable by this process); GPUs: {n_gpus}")
    print(
        f"{n_rows:,} training rows of {data}, global batch {args.batch_size}, "
        f"{args.epochs} epochs; medians over the epochs after the first"
    )
    print(
        "fp32 matmul peak in this run: "
        + ", ".join(
            f"{cores} core{'s' if cores > 1 else ''} {gflops:.0f} GFLOP/s"
            for cores, gflops in peaks.items()
        )
        + "\n"
    )
    columns = ["config", "cores/GPUs", "s/epoch", "rows/s", "speed-up", "efficiency"]
    print("| " + " | ".join([*columns, "of matmul peak", "final loss"]) + " |")
    print("|" + "---|" * 8)
    baselines: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for config in [*args.configs, *gpus]:
            result = run_config(config, args, Path(folder))
            baseline = baselines.setdefault(config.device, (rows_per_second(result), config.units))
            print(table_row(config, result, baseline, peaks), flush=True)
    if gpu_note:
        print(f"\n{gpu_note}")


def main() -> None:
    """Run the benchmark, or with ``--worker`` one process of a configuration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs",
        type=parse_configs,
        default=parse_configs("1x1,1x2,2x1"),
        help="CPU configurations PROCESSESxTHREADS, comma-separated (default: 1x1,1x2,2x1)",
    )
    parser.add_argument(
        "--epochs", type=int, default=40, help="epochs per configuration (default: 40)"
    )
    parser.add_argument("--rows", type=int, default=20000, help="training rows (default: 20000)")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch (default: 128)")
    parser.add_argument("--data-dir", help="train on MNIST from this folder (default: synthetic)")
    # Set by the benchmark for the processes it starts.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is a warm-up")
    if args.worker:
        worker(args)
    else:
        benchmark(args)


if __name__ == "__main__":
    main()
