"""GPU check: train, evaluate, save, resume and reload a VAE on CUDA; its speed against the CPU.

Needs no data files (the device machine has none): the rows are MNIST-sized synthetic images,
smooth random blobs binarised with a fixed seed. Prints one line per check and a table of epoch
times; exits with status 1 if a check fails. ``--device cpu`` runs the same checks on the CPU
(a dry run of the script itself). Run on a machine with a GPU:
    python benchmarks/gpu_check.py
"""

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import vaekit

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, passed: bool, detail: str = "") -> None:
    RESULTS.append((name, bool(passed), detail))
    print(f"{'ok  ' if passed else 'FAIL'} {name}{f': {detail}' if detail else ''}", flush=True)


def synthetic_images(n: int, seed: int = 0) -> np.ndarray:
    """(n, 784) binary images: a few Gaussian blobs each, thresholded."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(28), np.arange(28), indexing="ij"), -1).reshape(-1, 2)
    out = np.zeros((n, 784), dtype=np.float32)
    for start in range(0, n, 5000):
        m = min(5000, n - start)
        centres = rng.uniform(4, 24, size=(m, 3, 2))
        d2 = ((grid[None, None] - centres[:, :, None]) ** 2).sum(-1)
        out[start : start + m] = (np.exp(-d2 / 18).sum(1) > 0.5).astype(np.float32)
    return out


def model(device: str, **params) -> vaekit.VAE:
    defaults = dict(
        n_components=20,
        hidden_sizes=(400,),
        likelihood="bernoulli",
        batch_size=1024,
        max_epochs=3,
        validation_fraction=0.1,
        patience=None,
        random_state=0,
        verbose=False,
        device=device,
    )
    return vaekit.VAE(**(defaults | params))


def interrupt(record: dict) -> None:
    """A callback that stops a fit with Ctrl-C after its second epoch (checkpointed by then)."""
    if record["epoch"] == 2:
        raise KeyboardInterrupt


def epoch_seconds(vae: vaekit.VAE) -> float:
    return float(np.median([record["seconds"] for record in vae.history_[1:] or vae.history_]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rows", type=int, default=60_000)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("No CUDA device here: nothing to check (try --device cpu for a dry run).")
        sys.exit(1)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__}, device {args.device} ({name})")
    X = synthetic_images(args.rows)
    X_test = synthetic_images(2000, seed=1)

    times = {}
    for precision in ("fp32", "bf16", "fp16"):
        if precision == "fp16" and args.device == "cpu":
            continue
        vae = model(args.device, precision=precision).fit(X)
        losses = [record["loss"] for record in vae.history_]
        times[precision] = epoch_seconds(vae)
        check(
            f"trains in {precision}",
            np.isfinite(losses).all() and losses[-1] < losses[0],
            f"loss {losses[0]:.1f} -> {losses[-1]:.1f}, {times[precision]:.2f} s/epoch",
        )
    cpu = model("cpu", max_epochs=2).fit(X)
    times["cpu fp32"] = epoch_seconds(cpu)

    vae = model(args.device).fit(X)
    on_device = next(vae.module_.parameters()).device
    check("the module lives on the device", on_device.type == torch.device(args.device).type)
    log_px = vae.score_samples(X_test, n_samples=100)
    check("score_samples is finite", np.isfinite(log_px).all(), f"{log_px.mean():.2f} nats")
    with tempfile.TemporaryDirectory() as folder:
        saved = vae.save(Path(folder) / "model")
        on_cpu = vaekit.load(saved, device="cpu")
        gap = np.abs(on_cpu.score_samples(X_test, n_samples=100) - log_px).max()
        check("a model saved on the device scores the same on the CPU", gap < 1e-6, f"{gap:.1e}")
        back = vaekit.load(saved, device=args.device)
        same = np.array_equal(back.transform(X_test), vae.transform(X_test))
        check("it reloads onto the device", same)

        unbroken = model(args.device, max_epochs=4).fit(X)
        for where in (args.device, "cpu"):
            ckpt = Path(folder) / f"ckpt-{where}"
            with contextlib.suppress(KeyboardInterrupt):
                model(args.device, max_epochs=4).fit(X, checkpoint_dir=ckpt, callback=interrupt)
            resumed = model(where, max_epochs=4).fit(X, checkpoint_dir=ckpt)
            a = {k: v.cpu() for k, v in unbroken.module_.state_dict().items()}
            b = {k: v.cpu() for k, v in resumed.module_.state_dict().items()}
            identical = all(torch.equal(a[k], b[k]) for k in a)
            biggest = max(float((a[k] - b[k]).abs().max()) for k in a)
            check(
                f"a fit interrupted on {args.device} and resumed on {where} trains to the end",
                resumed.n_epochs_ == 4 and np.isfinite(biggest),
                f"largest weight difference from an unbroken fit {biggest:.1e}, "
                f"bit-identical: {identical}",
            )

    rows = f"{int(0.9 * args.rows):,} rows"
    print(f"\n| device | precision | s/epoch (batch 1024, {rows}) | speed-up over the CPU |")
    print("|---|---|---|---|")
    for key, seconds in times.items():
        device = "cpu" if key.startswith("cpu") else args.device
        precision = key.split()[-1]
        print(f"| {device} | {precision} | {seconds:.3f} | {times['cpu fp32'] / seconds:.1f}x |")
    failed = [name for name, passed, _ in RESULTS if not passed]
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
