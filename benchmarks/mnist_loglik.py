"""The paper protocol's test NLL (K = 5000 on the 10,000 MNIST test images) against its FLOP bound.

Evaluates a trained MNIST model (by default the zoo's ``mnist-vae-50d``, Burda et al.'s
784-200-200-50 VAE) with ``score_samples(precision="fp32")``: networks in float32, the
log-sum-exp over K in float64. Prints the wall time, the samples per second, the FLOPs of the
matrix products and the bound they give at the fp32 matmul peak measured in the same process
(the best of 2048 x 2048 products, on the threads the evaluation uses), the ratio of the two,
and the peak resident memory. The float64 reference (``precision="fp64"``) is run on the first
``--reference-rows`` rows: a row's estimate does not depend on the others, so the two are
compared row by row (mean and largest difference). ``--profile N`` instead profiles the float32
path on the first N rows (torch.profiler) and prints where its time goes, operator by operator.
``--compile`` measures what fusing the elementwise work buys: the log-weights (decoder, densities)
run through ``torch.compile`` (inductor's kernels, the plain tanh and softplus forms), compiled
on a first call outside the timing; vaekit itself does not compile.

Run: .venv/bin/python benchmarks/mnist_loglik.py [--samples 5000] [--rows 10000]
[--reference-rows 500] [--device cuda] [--profile 64] [--compile] [--data-dir ../shared/data]
"""

import argparse
import os
import resource
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

import vaekit
from vaekit.data import load_dataset


def peak_memory_gib() -> float:
    """The process's peak resident memory so far, in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def matmul_peak(device: str, seconds: float = 3.0) -> float:
    """The best fp32 FLOP/s of 2048 x 2048 products on ``device`` over about ``seconds``."""
    a, b = (torch.randn(2048, 2048, device=device) for _ in range(2))
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = max(best, 4 * 2 * 2048**3 / (time.perf_counter() - start))
    return best


def product_flops(net: nn.Module) -> int:
    """FLOPs of one row's pass through the linear layers of ``net`` (2 per multiply-add)."""
    layers = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not layers or any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in net.modules()):
        raise SystemExit("mnist_loglik.py counts the FLOPs of MLP models only")
    return sum(2 * m.in_features * m.out_features for m in layers)


#: The operators that do the matrix products (the rest is elementwise work, copies and sums).
PRODUCTS = {"aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear"}


def profile(vae: vaekit.VAE, X: np.ndarray, n_samples: int, bound: float) -> None:
    """Print the float32 estimate's operators on X by their own CPU time, and the products'
    time and the rest's against ``bound``, the products' FLOP bound in seconds."""
    vae.score_samples(X[:2], n_samples, precision="fp32")  # a first call warms up the caches
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        vae.score_samples(X, n_samples, precision="fp32")
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    products = sum(e.self_cpu_time_total for e in events if e.key in PRODUCTS) / 1e6
    print(events.table(sort_by="self_cpu_time_total", row_limit=12))
    print(
        f"matrix products: {products * 1e3:.0f} ms of the operators' own {total * 1e3:.0f} ms "
        f"({products / total:.0%}), {bound / products:.0%} of the peak; the rest alone: "
        f"{(total - products) * 1e3:.0f} ms, {(total - products) / bound:.2f} x the products' "
        f"bound of {bound * 1e3:.0f} ms"
    )


def compile_log_weights(vae: vaekit.VAE, X: np.ndarray, n_samples: int) -> Callable:
    """Make every module of ``vae``'s kind compute its log-weights through ``torch.compile``,
    and compile them (full chunks and the last, shorter one) on a first call; returns the
    plain method, to put back."""
    kind = type(vae.module_)
    plain = kind.log_weights
    kind.log_weights = torch.compile(plain, dynamic=False)
    start = time.perf_counter()
    vae.score_samples(X[:16], n_samples, precision="fp32")
    print(f"  compiled the log-weights in {time.perf_counter() - start:.1f} s (not timed below)")
    return plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist-vae-50d", help="a pretrained model's name")
    parser.add_argument("--samples", type=int, default=5000, help="K (default: 5000)")
    parser.add_argument("--rows", type=int, default=10000, help="test rows (default: all)")
    parser.add_argument("--reference-rows", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", type=int, default=0, help="profile N rows instead")
    parser.add_argument("--compile", action="store_true", help="torch.compile the log-weights")
    default_dir = os.environ.get("VAEKIT_DATA", "../shared/data")
    parser.add_argument("--data-dir", default=default_dir, help="MNIST files (../shared/data)")
    args = parser.parse_args()

    X = load_dataset("mnist", data_dir=args.data_dir, binarize="dynamic").test[: args.rows]
    vae = vaekit.load_pretrained(args.model, device=args.device)
    if args.profile:
        X = X[: args.profile]
    module = vae.module_
    per_sample = product_flops(module.decoder)
    flops = len(X) * (product_flops(module.encoder) + args.samples * per_sample)
    where = f"{args.device}, {torch.get_num_threads()} threads"
    print(f"{args.model} on {len(X)} MNIST test images, K = {args.samples}, {where}: ", end="")
    print(f"{flops / 1e12:.2f} TFLOP of matrix products")

    peak = matmul_peak(args.device)
    if args.profile:
        print(f"  fp32 matmul peak         {peak / 1e9:.1f} GFLOP/s (2048 x 2048, same process)")
        profile(vae, X, args.samples, flops / peak)
        return
    plain = compile_log_weights(vae, X, args.samples) if args.compile else None
    memory_before = peak_memory_gib()
    start = time.perf_counter()
    fast = vae.score_samples(X, args.samples, precision="fp32")
    seconds = time.perf_counter() - start
    memory_after = peak_memory_gib()
    bound = flops / peak
    sem = fast.std(ddof=1) / np.sqrt(len(fast))
    print(f"  test NLL                 {-fast.mean():.3f} ± {sem:.3f} nats")
    rate = len(X) * args.samples / seconds
    print(f"  wall time                {seconds:.1f} s ({rate:,.0f} samples/s)")
    print(f"  fp32 matmul peak         {peak / 1e9:.1f} GFLOP/s (2048 x 2048, same process)")
    print(f"  FLOP bound               {bound:.1f} s; wall time / bound = {seconds / bound:.2f}")
    print(f"  peak resident memory     {memory_before:.2f} GiB before, {memory_after:.2f} after")

    if plain is not None:  # the reference runs the plain float64 path
        type(vae.module_).log_weights = plain
    n_ref = min(args.reference_rows, len(X))
    start = time.perf_counter()
    reference = vae.score_samples(X[:n_ref], args.samples, precision="fp64")
    ref_seconds = time.perf_counter() - start
    difference = fast[:n_ref] - reference
    print(f"  float64 reference, {n_ref} rows: {ref_seconds:.1f} s; fp32 - fp64: mean ", end="")
    print(f"{difference.mean():+.2e}, largest per row {np.abs(difference).max():.2e} nats")


if __name__ == "__main__":
    main()
