"""Training from a memory-mapped file larger than the memory a process should need.

Writes a uint8 .npy file of ``--gigabytes`` (default 4.3 GB: MNIST's training images tiled to
5.5 million rows) into a temporary folder, trains one epoch of a 784-400-20 VAE on it with
``VAE.fit(ArraySource(np.load(path, mmap_mode="r"), divisor=255))``, and reports the peak
anonymous memory of the process (RssAnon, sampled every 20 ms: the file's pages are page cache,
reclaimable, and do not count) and the epoch's throughput. Then it trains the same epoch on
the same rows loaded into memory (``np.load(path)``) and prints the throughput ratio. The file
is removed at the end. Run:
    .venv/bin/python benchmarks/memmap.py --data-dir ../shared/data
and, in a process allowed less memory than the file (a cgroup, say), with ``--memmap-only``.
"""

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

import vaekit
from vaekit.data import load_dataset
from vaekit.engine.sources import ArraySource


class AnonymousMemory:
    """The peak of /proc/self/status's RssAnon while the context is open, in bytes."""

    def __enter__(self):
        self.peak, self.running = anonymous_bytes(), True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, anonymous_bytes())
            time.sleep(0.02)

    def __exit__(self, *_):
        self.running = False
        self.thread.join()


def anonymous_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def write_tiled(path: Path, images: np.ndarray, n_rows: int) -> None:
    """A uint8 (n_rows, 784) .npy file of ``images`` repeated, written a block at a time."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n_rows, 784))
    for start in range(0, n_rows, len(images)):
        stop = min(start + len(images), n_rows)
        out[start:stop] = images[: stop - start]
    out.flush()
    del out


def one_epoch(source, batch_size: int) -> tuple[float, int]:
    """(seconds of the one training epoch, peak anonymous bytes over the whole fit)."""
    vae = vaekit.VAE(
        20,
        hidden_sizes=(400,),
        likelihood="bernoulli",
        binarize="dynamic",
        batch_size=batch_size,
        max_epochs=1,
        validation_fraction=0,
        patience=None,
        random_state=0,
        verbose=True,
    )
    with AnonymousMemory() as memory:
        vae.fit(source)
    return vae.history_[0]["seconds"], memory.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=4.3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    parser.add_argument("--tmp", default=None, help="folder for the temporary file")
    parser.add_argument(
        "--memmap-only",
        action="store_true",
        help="skip the in-memory epoch (for a process allowed less memory than the file)",
    )
    args = parser.parse_args()
    mnist = load_dataset("mnist", data_dir=args.data_dir)
    images = np.round(mnist.train * 255).astype(np.uint8)
    n_rows = int(args.gigabytes * 1e9) // 784
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory(dir=args.tmp) as folder:
        path = Path(folder) / "tiled.npy"
        start = time.perf_counter()
        write_tiled(path, images, n_rows)
        size = path.stat().st_size
        print(f"wrote {n_rows:,} rows, {size / 1e9:.2f} GB, in {time.perf_counter() - start:.0f} s")
        mapped = ArraySource(np.load(path, mmap_mode="r"), divisor=255)
        seconds, peak = one_epoch(mapped, args.batch_size)
        print(
            f"memmap:    one epoch {seconds:.1f} s, {n_rows / seconds:,.0f} rows/s, "
            f"peak RssAnon {peak / 1e9:.2f} GB (file {size / 1e9:.2f} GB)"
        )
        del mapped
        if args.memmap_only:
            return
        in_memory = ArraySource(np.load(path), divisor=255)
        seconds_mem, peak_mem = one_epoch(in_memory, args.batch_size)
        print(
            f"in memory: one epoch {seconds_mem:.1f} s, {n_rows / seconds_mem:,.0f} rows/s, "
            f"peak RssAnon {peak_mem / 1e9:.2f} GB"
        )
        print(f"throughput memmap / in memory: {seconds_mem / seconds:.2f}x")


if __name__ == "__main__":
    main()
