"""Training speed: vaekit's loop against a plain PyTorch loop, same model, data and optimiser.

The reference is written the way pytorch/examples writes its VAE (vae/main.py): a DataLoader over
a TensorDataset, Adam, binary cross-entropy summed over pixels (of MNIST binarised at 0.5
here), `loss.item()` every step. vaekit
runs the epochs of its own training loop (`vaekit.engine.loop.Trainer`, what `VAE.fit` runs:
batches read from a data source, the module's forward as the whole objective, fused Adam,
metrics reduced once per epoch, denormals flushed) on the same 784-400-20 MLP VAE, built from
vaekit's public model parts. Epochs alternate
between the two so that both see the same machine; the script prints per-epoch medians, the
speed ratio, samples per second, the loss each reached, and the fraction of the matmul
roofline measured in the same run. Another loop, "matmuls only", runs nothing but each step's
matrix products at the same shapes: no loop that trains this model can beat it, so reference /
matmuls-only is the ceiling of the speed-up. ``--compile`` adds vaekit with ``torch.compile`` on
the module (its forward is the whole objective). ``--profile`` then profiles one epoch of
vaekit's loop at the first configuration (``torch.profiler``, after an unprofiled epoch): the
operations by their own CPU time, and the share of it in the matrix products.

Run: .venv/bin/python benchmarks/train_speed.py --data-dir ../shared/data
"""

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vaekit.data import load_dataset
from vaekit.engine.loop import Trainer, TrainingOptions
from vaekit.engine.sources import ArraySource
from vaekit.model.likelihoods import make_likelihood
from vaekit.model.modules import VAEModule
from vaekit.model.nets import build_networks
from vaekit.model.priors import StandardNormal

# (inputs, outputs) of the 784-400-20 VAE's linear layers; 400 -> 40 gives mean and log-variance.
LAYERS = [(784, 400), (400, 40), (20, 400), (400, 784)]
FORWARD_MACS = sum(n_in * n_out for n_in, n_out in LAYERS)  # multiply-adds per example
# Backward computes every weight gradient and every input gradient but the first layer's (the data
# needs none); 2 FLOPs per multiply-add.
FLOPS_PER_EXAMPLE = 2 * (3 * FORWARD_MACS - LAYERS[0][0] * LAYERS[0][1])


class ReferenceVAE(nn.Module):
    """pytorch/examples' VAE, unchanged in substance."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def reference_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def reference_epoch(model, optimizer, loader, precision) -> float:
    model.train()
    total = 0.0
    for (x,) in loader:
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            recon, mu, logvar = model(x)
        loss = reference_loss(recon.float(), x, mu.float(), logvar.float())
        loss.backward()
        total += loss.item()
        optimizer.step()
    return total / len(loader.dataset)


def vaekit_trainer(X, batch_size, precision, compiled=False) -> Trainer:
    """vaekit's loop on the 784-400-20 VAE, as ``VAE.fit`` sets it up."""
    torch.manual_seed(0)
    likelihood = make_likelihood("bernoulli", X.shape[1])
    encoder, decoder = build_networks(
        "mlp",
        n_features=X.shape[1],
        latent_dim=20,
        encoder_outputs=40,
        decoder_outputs=X.shape[1],
        hidden_sizes=(400,),
        activation="relu",
    )
    module = VAEModule(encoder, decoder, likelihood, StandardNormal(20), 20)
    if compiled:
        module = torch.compile(module, dynamic=False)
    options = TrainingOptions(
        batch_size=batch_size, precision=precision, validation_fraction=0, verbose=False
    )
    return Trainer(module, ArraySource(X.numpy()), options, torch.Generator().manual_seed(0))


def matmul_peak_gflops(dtype, n=2048, repeats=10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def step_products(batch_size: int, dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The matrix products of one training step: forward, weight and input gradients."""
    products = []
    for layer, (n_in, n_out) in enumerate(LAYERS):
        x, weight = (
            torch.randn(batch_size, n_in, dtype=dtype),
            torch.randn(n_out, n_in, dtype=dtype),
        )
        grad = torch.randn(batch_size, n_out, dtype=dtype)
        products += [(x, weight.T), (grad.T, x)] + ([(grad, weight)] if layer > 0 else [])
    return products


def matmuls_epoch(n_examples: int, batch_size: int, precision: str) -> None:
    """An epoch of nothing but the steps' matrix products, at the loops' shapes and precision."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    full, rest = divmod(n_examples, batch_size)
    sizes = [batch_size] * full + ([rest] if rest else [])
    products = {size: step_products(size, dtype) for size in set(sizes)}
    for size in sizes:
        for a, b in products[size]:
            a @ b


#: The operations that are the matrix products of a step (forward, and both gradients).
PRODUCT_OPS = {"aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm"}


def profile_epoch(X, batch_size: int, precision: str, top: int = 12) -> None:
    """Print where one epoch of vaekit's loop spends its time: the ``top`` operations by their
    own CPU time (``torch.profiler``), after one unprofiled epoch, and the products' share."""
    trainer = vaekit_trainer(X, batch_size, precision)
    torch.set_flush_denormal(True)
    trainer.train_epoch(0, 0.0)
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as profile:
        start = time.perf_counter()
        trainer.train_epoch(1, 0.0)
        wall = time.perf_counter() - start
    torch.set_flush_denormal(False)
    events = sorted(profile.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    products = sum(e.self_cpu_time_total for e in events if e.key in PRODUCT_OPS)
    steps = -(-len(X) // batch_size)
    print(
        f"\nprofile of one vaekit epoch, batch {batch_size} {precision}: {wall:.2f} s under the "
        f"profiler, {steps} steps; the operations' own time {total / 1e6:.2f} s, "
        f"{products / total:.0%} of it in the matrix products\n"
    )
    print("| operation | calls | own CPU time (s) | share | us a call |")
    print("|---|---|---|---|---|")
    for event in events[:top]:
        own = event.self_cpu_time_total
        print(
            f"| {event.key} | {event.count} | {own / 1e6:.3f} | {own / total:.1%} "
            f"| {own / event.count:.1f} |"
        )


def compare(X, batch_size, precision, epochs, loops):
    torch.manual_seed(0)
    ref = ReferenceVAE()
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(X), batch_size=batch_size, shuffle=True)
    trainers = {
        loop: vaekit_trainer(X, batch_size, precision, loop.endswith("compile"))
        for loop in loops[1:]
    }
    times = {loop: [] for loop in [*loops, "matmuls only"]}
    losses = {}
    for epoch in range(epochs):
        start = time.perf_counter()
        losses["reference"] = reference_epoch(ref, ref_opt, loader, precision)
        times["reference"].append(time.perf_counter() - start)
        for loop, trainer in trainers.items():
            start = time.perf_counter()
            torch.set_flush_denormal(True)
            metrics = trainer.train_epoch(epoch, 0.0)
            torch.set_flush_denormal(False)
            times[loop].append(time.perf_counter() - start)
            losses[loop] = metrics["loss"]
        start = time.perf_counter()
        matmuls_epoch(len(X), batch_size, precision)
        times["matmuls only"].append(time.perf_counter() - start)
    return times, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per configuration")
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    parser.add_argument("--configs", nargs="*", default=["128:fp32", "1024:fp32", "1024:bf16"])
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time vaekit with torch.compile on the loss (its first epoch holds the compile)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then profile one epoch of vaekit's loop at the first configuration",
    )
    args = parser.parse_args()
    loops = ["reference", "vaekit", *(["vaekit+compile"] if args.compile else [])]
    # Binarised at 0.5: vaekit's Bernoulli is a density of binary pixels (-softplus((1 - 2x) l)),
    # where pytorch/examples feeds intensities to its cross-entropy; the work is the same.
    X = torch.from_numpy(load_dataset("mnist", data_dir=args.data_dir).train > 0.5).float()
    # Only the precisions asked for: without bf16 instructions (AVX2 only) a 2048 x 2048 bf16
    # product takes about 12 s on one thread, and the peak's eleven of them two minutes.
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    asked = sorted({config.split(":")[1] for config in args.configs})
    peaks = {name: matmul_peak_gflops(dtypes[name]) for name in asked}
    threads = torch.get_num_threads()
    print(f"MNIST train: {len(X)} images; torch {torch.__version__}, {threads} threads")
    shown = ", ".join(f"{name} {peak:.0f} GFLOP/s" for name, peak in peaks.items())
    print(f"matmul peak in this run: {shown}", flush=True)
    print(
        f"{args.epochs} epochs each, interleaved; medians over all epochs and over the last half\n"
    )
    columns = ["batch", "precision", "loop", "s/epoch (median)", "later epochs", "samples/s"]
    print("| " + " | ".join([*columns, "roofline", "loss/example"]) + " |")
    print("|" + "---|" * 8)
    for config in args.configs:
        batch, precision = config.split(":")
        times, losses = compare(X, int(batch), precision, args.epochs, loops)
        for loop in [*loops, "matmuls only"]:
            median = statistics.median(times[loop])
            later = statistics.median(times[loop][args.epochs // 2 :])
            rate = len(X) / median
            roofline = rate * FLOPS_PER_EXAMPLE / 1e9 / peaks[precision]
            print(
                f"| {batch} | {precision} | {loop} | {median:.3f} | {later:.3f} | {rate:,.0f} "
                f"| {roofline:.0%} | {f'{losses[loop]:.2f}' if loop in losses else ''} |"
            )
        ratio = statistics.median(times["reference"]) / statistics.median(times["vaekit"])
        ceiling = statistics.median(times["reference"]) / statistics.median(times["matmuls only"])
        print(
            f"| {batch} | {precision} | **vaekit / reference speed** | **{ratio:.2f}x** | | | | |\n"
            f"| {batch} | {precision} | ceiling: reference / matmuls only | {ceiling:.2f}x "
            "| | | | |"
        )
        if "vaekit+compile" in times:
            gain = statistics.median(times["vaekit"]) / statistics.median(times["vaekit+compile"])
            first = times["vaekit+compile"][0]
            print(
                f"| {batch} | {precision} | compiled / eager speed (first epoch, with the "
                f"compile: {first:.1f} s) | {gain:.2f}x | | | | |"
            )
    if args.profile:
        batch, precision = args.configs[0].split(":")
        profile_epoch(X, int(batch), precision)


if __name__ == "__main__":
    main()
