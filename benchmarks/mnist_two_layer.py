"""Burda et al. (2016)'s MNIST VAEs trained for an epoch budget with the VAE objective (k = 1).

The models of the paper's section 5, tanh units, a Bernoulli decoder, dynamically binarised
MNIST: by default two stochastic layers, 784-200-200-100 (z1) and 100-100-100-50 (z2), 85.33
nats of test NLL after 3,280 epochs in the paper (``vaekit.VAE(n_components=100,
upper_layers=(50,), ...)``); with ``--layers 1`` the one-layer 784-200-200-50 model, 86.76 nats
after 3,280 epochs. The recipe is the one-layer one of BENCHMARKS.md (batch 100, Adam at 1e-3
with a cosine over ``--epochs``, the KL weight warmed up over the first tenth), each part a flag
(``--batch-size``, ``--learning-rate``, ``--warmup-fraction``); ``--ema-decay`` makes the fitted
model an average of the weights (``VAE(ema_decay=...)``), and the curve then gives the test NLL
of the raw weights too (read from the checkpoint, which keeps them), so one run measures both.
The model is measured in the paper's protocol: K = 5000 on all 10,000 test images. Every
``--eval-every`` epochs it appends the test NLL on ``--eval-rows`` images (K =
``--eval-samples``) to ``curve.csv``. The evaluations run the networks in ``--precision`` (fp32
by default: the same draws, the log-sum-exp in float64); the final one also scores the first
``--reference-rows`` test images in float64 and prints the gap.

Training takes hours on a CPU, so it is resumable: the state lives in ``--state-dir`` and the
same command continues from it, bit for bit; ``--session-minutes`` stops a session after that
much training (at the end of an epoch, checkpointed). Each session prints the machine's fp32
matmul peak, measured in the same run, since machines of this kind differ by up to 5x.

Run: .venv/bin/python benchmarks/mnist_two_layer.py --data-dir ../shared/data \\
    [--layers 1] [--epochs 2000] [--session-minutes 120] [--state-dir ~/.cache/vaekit/two-layer]
"""

import argparse
import csv
import json
import os
import time
from pathlib import Path

import torch
from mnist_nll import precision_gap, test_nll
from safetensors.torch import load_file
from train_speed import matmul_peak_gflops

import vaekit
from vaekit.data import load_dataset

#: The paper's test NLL after 3,280 epochs, by the number of stochastic layers.
PAPER_NLL, PAPER_EPOCHS = {1: 86.76, 2: 85.33}, 3280


class SessionOver(Exception):
    """This session's training time is spent; the checkpoint holds the state."""


def two_layer_vae(epochs: int) -> vaekit.VAE:
    """Burda et al.'s two-layer model with the one-layer recipe over ``epochs``."""
    return burda_vae(2, epochs)


def burda_vae(
    layers: int,
    epochs: int,
    batch_size: int = 100,
    learning_rate: float = 1e-3,
    warmup_fraction: float = 0.1,
    ema_decay: float | None = None,
) -> vaekit.VAE:
    """Burda et al.'s one- or two-layer model, trained for ``epochs`` with a cosine learning
    rate and the KL warmed up over ``warmup_fraction`` of them."""
    sizes = (
        dict(n_components=50)
        if layers == 1
        else dict(n_components=100, upper_layers=(50,), upper_hidden_sizes=(100, 100))
    )
    return vaekit.VAE(
        **sizes,
        hidden_sizes=(200, 200),
        activation="tanh",
        likelihood="bernoulli",
        binarize="dynamic",
        batch_size=batch_size,
        learning_rate=learning_rate,
        learning_rate_schedule="cosine",
        max_epochs=epochs,
        warmup_epochs=max(1, round(epochs * warmup_fraction)) if warmup_fraction else 0,
        validation_fraction=0,
        patience=None,
        ema_decay=ema_decay,
        random_state=0,
        verbose=False,
    )


def trained_seconds(checkpoint_dir: Path) -> float:
    """The training seconds a checkpoint already holds (0 without one): the callback sees only
    the epochs of this session."""
    state = checkpoint_dir / "state.json"
    return json.loads(state.read_text())["seconds"] if state.exists() else 0.0


def raw_weights_nll(vae: vaekit.VAE, checkpoint_dir: Path, *args) -> tuple[float, float]:
    """``test_nll(vae, *args)`` with the raw weights of the checkpoint just written (those the
    optimiser steps) in place of the average; the average is put back afterwards."""
    raw = load_file(checkpoint_dir / "state.safetensors")
    raw = {k.removeprefix("model."): v for k, v in raw.items() if k.startswith("model.")}
    averaged = {k: v.clone() for k, v in vae.module_.state_dict().items()}
    vae.module_.load_state_dict(raw)
    try:
        return test_nll(vae, *args)
    finally:
        vae.module_.load_state_dict(averaged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, choices=[1, 2], default=2)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--warmup-fraction", type=float, default=0.1, help="of the epochs, for the KL warm-up"
    )
    parser.add_argument(
        "--ema-decay", type=float, default=None, help="keep and evaluate an average of the weights"
    )
    parser.add_argument("--session-minutes", type=float, default=None)
    parser.add_argument("--eval-every", type=int, default=100, help="epochs between checks")
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--eval-rows", type=int, default=1000)
    parser.add_argument("--final-samples", type=int, default=5000)
    parser.add_argument("--precision", choices=["fp32", "fp64"], default="fp32")
    parser.add_argument("--reference-rows", type=int, default=200)
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    parser.add_argument(
        "--state-dir", type=Path, default=Path.home() / ".cache" / "vaekit" / "two-layer"
    )
    args = parser.parse_args()

    data = load_dataset("mnist", data_dir=args.data_dir, binarize="dynamic")
    peak = matmul_peak_gflops(torch.float32)
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s; {torch.get_num_threads()} threads", flush=True)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    curve = args.state_dir / "curve.csv"
    if not curve.exists():
        curve.write_text(
            "epoch,training_minutes,train_neg_elbo,test_nll,test_nll_sem,peak_gflops,"
            "test_nll_raw_weights\n"
        )
    vae = burda_vae(
        args.layers,
        args.epochs,
        args.batch_size,
        args.learning_rate,
        args.warmup_fraction,
        args.ema_decay,
    )
    checkpoint_dir = args.state_dir / "checkpoint"
    earlier = trained_seconds(checkpoint_dir)
    session = [0.0]

    def check(record: dict) -> None:
        session[0] += record["seconds"]
        if record["epoch"] % args.eval_every == 0:
            rows = (data.test[: args.eval_rows], args.eval_samples, args.precision)
            nll, sem = test_nll(vae, *rows)
            raw = raw_weights_nll(vae, checkpoint_dir, *rows)[0] if args.ema_decay else None
            minutes = (earlier + session[0]) / 60
            with curve.open("a", newline="") as f:
                row = [record["epoch"], round(minutes, 1), round(record["loss"], 3)]
                row += [round(nll, 3), round(sem, 3), round(peak), raw and round(raw, 3)]
                csv.writer(f).writerow(row)
            print(
                f"epoch {record['epoch']}: test NLL {nll:.2f} ± {sem:.2f} (K={args.eval_samples}, "
                f"{args.eval_rows} images)" + (f"; raw weights {raw:.2f}" if raw else ""),
                flush=True,
            )
        if args.session_minutes and session[0] > args.session_minutes * 60:
            raise SessionOver

    try:
        vae.fit(data.train, checkpoint_dir=checkpoint_dir, callback=check)
    except SessionOver:
        print(
            f"session over after {session[0] / 60:.1f} min of training; run the same "
            "command again to go on",
            flush=True,
        )
        return
    minutes = sum(record["seconds"] for record in vae.history_) / 60
    start = time.perf_counter()
    nll, sem = test_nll(vae, data.test, args.final_samples, args.precision)
    result = vaekit.evaluate(vae, data.test[:2000], n_samples=100)
    print(
        f"{vae.n_epochs_} epochs, {minutes:.0f} min of training in all; test NLL {nll:.2f} ± "
        f"{sem:.2f} (K={args.final_samples}, {len(data.test)} images, {args.precision}, "
        f"{time.perf_counter() - start:.0f} s); the paper: {PAPER_NLL[args.layers]} after "
        f"{PAPER_EPOCHS} epochs; active units per layer "
        f"{result.get('active_units_per_layer', [result['active_units']])}",
        flush=True,
    )
    if args.precision != "fp64" and args.reference_rows:
        rows = data.test[: args.reference_rows]
        print(precision_gap(vae, rows, args.final_samples, args.precision), flush=True)


if __name__ == "__main__":
    main()
