"""The VampPrior against the standard-normal prior: the same networks, the same epochs.

Tomczak & Welling (2018), Table 2: on dynamically binarised MNIST their one-layer VAE goes from
88.56 nats (standard prior) to 85.57 (VampPrior, K = 500 pseudo-inputs), test NLL by importance
sampling with K = 5000. This script trains Burda et al.'s MNIST VAE (784-200-200-50, Bernoulli;
the model of mnist_nll.py and its recipe: batch 100, Adam at 1e-3 with a cosine over the budget,
the KL weight warmed up over the first tenth) with ReLU units once with each prior for the same
``--epochs``, then measures both in the paper's protocol (K = 5000 on all 10,000 test images)
and prints them beside the paper's figures, with the minutes each took and the machine's fp32
matmul peak measured in the same run. ReLU, not Burda's tanh: tanh networks in PyTorch's
default start trapped the VampPrior's posterior in the first epoch (first_epochs.py;
vaekit now starts them as Glorot's), and the paper's own units are gated. A VampPrior step also
runs the encoder on its K pseudo-inputs, so its epochs take longer; an epoch budget keeps the
comparison the paper's.

Each trained model is saved under ``--models-dir`` (when given) and loaded from there by a later
run instead of trained again, so ``--train-only`` can train now and a second run evaluate.
The evaluation runs the networks in ``--precision`` (fp32 by default, float32: the same draws, the
log-sum-exp in float64) and scores the first ``--reference-rows`` test images in float64 too,
printing how far apart the two are.

Run: .venv/bin/python benchmarks/mnist_vamp.py --data-dir ../shared/data [--epochs 100]
[--priors vamp] [--activation relu] [--models-dir DIR [--train-only]] [--precision fp64]
"""

import argparse
import os
import time
from pathlib import Path

import torch
from mnist_nll import burda_vae, precision_gap, test_nll
from train_speed import matmul_peak_gflops

import vaekit
from vaekit.data import load_dataset

PAPER = {"standard_normal": 88.56, "vamp": 85.57}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="training epochs per model")
    parser.add_argument("--components", type=int, default=500, help="VampPrior pseudo-inputs")
    parser.add_argument("--final-samples", type=int, default=5000)
    parser.add_argument(
        "--priors", nargs="+", choices=list(PAPER), default=list(PAPER), help="priors to train"
    )
    parser.add_argument("--activation", default="relu", help="hidden units of both networks")
    parser.add_argument("--models-dir", type=Path, default=None, help="trained models kept here")
    parser.add_argument("--train-only", action="store_true", help="train and save, then stop")
    parser.add_argument("--precision", choices=["fp32", "fp64"], default="fp32")
    parser.add_argument(
        "--reference-rows", type=int, default=500, help="test images scored in float64 too"
    )
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    args = parser.parse_args()

    data = load_dataset("mnist", data_dir=args.data_dir, binarize="dynamic")
    peak = matmul_peak_gflops(torch.float32)
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s; {torch.get_num_threads()} threads", flush=True)
    results = {}
    for prior in args.priors:
        components = args.components if prior == "vamp" else None
        saved = args.models_dir / f"{prior}-{args.epochs}" if args.models_dir else None
        if saved is not None and saved.exists():
            vae = vaekit.load(saved)
        else:
            vae = burda_vae(
                prior=prior,
                prior_components=components,
                batch_size=100,
                learning_rate=1e-3,
                learning_rate_schedule="cosine",
                max_epochs=args.epochs,
                warmup_epochs=max(1, args.epochs // 10),
                validation_fraction=0,
                patience=None,
            ).set_params(activation=args.activation)
            vae.fit(data.train)
            if saved is not None:
                vae.save(saved)
        if args.train_only:
            continue
        minutes = sum(record["seconds"] for record in vae.history_) / 60
        start = time.perf_counter()
        nll, sem = test_nll(vae, data.test, args.final_samples, args.precision)
        seconds = time.perf_counter() - start
        active = vaekit.evaluate(vae, data.test[:2000], n_samples=1)["active_units"]
        results[prior] = (nll, sem, minutes)
        print(
            f"{prior}: {vae.n_epochs_} epochs in {minutes:.1f} min; test NLL {nll:.2f} ± "
            f"{sem:.2f} (K={args.final_samples}, {len(data.test)} images, {args.precision}, "
            f"{seconds:.0f} s); {active} active units",
            flush=True,
        )
        if args.precision != "fp64" and args.reference_rows:
            rows = data.test[: args.reference_rows]
            print("  " + precision_gap(vae, rows, args.final_samples, args.precision), flush=True)
    print(f"\n| prior | training minutes | test NLL after {args.epochs} epochs | the paper's |")
    print("|---|---|---|---|")
    for prior, (nll, sem, minutes) in results.items():
        print(f"| {prior} | {minutes:.1f} | {nll:.2f} ± {sem:.2f} | {PAPER[prior]} |")
    if len(results) == len(PAPER):
        gain = results["standard_normal"][0] - results["vamp"][0]
        paper_gain = PAPER["standard_normal"] - PAPER["vamp"]
        print(f"| gain of the VampPrior | | {gain:.2f} | {paper_gain:.2f} |")


if __name__ == "__main__":
    main()
