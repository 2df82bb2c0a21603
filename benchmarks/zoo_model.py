"""Put a trained MNIST run into vaekit's model zoo (``src/vaekit/pretrained/NAME``), measured.

Copies the run's saved model, measures its test NLL in the paper protocol (``--samples`` K on
all 10,000 test images, fp32 networks with the log-sum-exp in float64) and its check figure
(log p(x) with K = 100 in float64 on the shipped test rows, which ``tests/test_zoo.py``
recomputes), and writes ``card.json`` with the run's ``vaekit train`` command, the SHA256 of
every file and ``--machine``, the words for the machine that trained it. Writes
``pretrained/mnist-test.npz`` (the first 1,000 test images as vaekit binarises them, with their
labels) when it is missing.

Run: .venv/bin/python benchmarks/zoo_model.py runs/mnist-2d mnist-vae-2d \\
    --description "..." --machine "..." [--samples 5000] [--data-dir ../shared/data]
"""

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import vaekit
from vaekit.data import load_dataset
from vaekit.io import CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE
from vaekit.runs import open_run
from vaekit.zoo import CARD_FILE, TEST_ROWS_FILE, pretrained_test_rows

ZOO = Path(__file__).resolve().parents[1] / "src" / "vaekit" / "pretrained"
TEST_ROWS, CHECK_ROWS, CHECK_SAMPLES = 1000, 500, 100


def write_test_rows(test: np.ndarray, labels: np.ndarray) -> None:
    """The first test images, binarised, as packed bits, and their labels."""
    bits = np.packbits(test[:TEST_ROWS].astype(np.uint8), axis=1)
    np.savez_compressed(ZOO / TEST_ROWS_FILE, bits=bits, y=labels[:TEST_ROWS].astype(np.int64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--description", required=True)
    parser.add_argument("--machine", required=True, help="the machine that trained the run")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    args = parser.parse_args()

    run = open_run(args.run)
    data = load_dataset("mnist", data_dir=args.data_dir, binarize="dynamic")
    ZOO.mkdir(exist_ok=True)
    if not (ZOO / TEST_ROWS_FILE).is_file():
        write_test_rows(data.test, data.y_test)
    start = time.perf_counter()
    log_px = run.estimator.score_samples(data.test, args.samples, precision="fp32")
    seconds = time.perf_counter() - start
    shipped = pretrained_test_rows()[0][:CHECK_ROWS]
    check = run.estimator.score_samples(shipped, CHECK_SAMPLES)
    staging = Path(tempfile.mkdtemp(dir=ZOO, prefix=f".{args.name}."))
    staging.chmod(0o755)  # mkdtemp makes it private; the package's folders are readable
    for file in (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE):
        shutil.copy2(args.run / file, staging / file)
    card = {
        "name": args.name,
        "description": args.description,
        "command": run.info["command"],
        "data": "mnist, binarised dynamically in training; the test set binarised once (seed 0)",
        "image_shape": [1, 28, 28],
        "sha256": {
            file: hashlib.sha256((staging / file).read_bytes()).hexdigest()
            for file in (CONFIG_FILE, WEIGHTS_FILE)
        },
        "test_nll": {
            "nats": round(float(-log_px.mean()), 3),
            "sem": round(float(log_px.std(ddof=1) / np.sqrt(len(log_px))), 3),
            "importance_samples": args.samples,
            "rows": len(log_px),
            "precision": "fp32",
            "seconds": round(seconds),
        },
        "check": {
            "rows": CHECK_ROWS,
            "importance_samples": CHECK_SAMPLES,
            "log_likelihood": float(check.mean()),
        },
        "training": {
            "epochs": run.info["epochs"],
            "seconds": run.info["training_seconds"],
            "machine": args.machine,
            "vaekit_version": vaekit.__version__,
        },
    }
    (staging / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    target = ZOO / args.name
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
