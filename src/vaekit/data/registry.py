"""The registered datasets: digits (inside scikit-learn), MNIST, Fashion-MNIST, binarized MNIST."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ..exceptions import DataError
from .amat import read_amat
from .binarize import binarize as apply_binarize
from .binarize import check_mode
from .dataset import Dataset
from .fetch import Source, locate
from .idx import read_idx_pair

PathLike = str | os.PathLike | None

MNIST = Source(
    name="mnist",
    title="MNIST",
    base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    sha256={
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
)

# The SHA256s that tensorflow/datasets publishes (tensorflow_datasets/url_checksums/).
FASHION_MNIST = Source(
    name="fashion-mnist",
    title="Fashion-MNIST",
    base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    sha256={
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
)

BINARIZED_MNIST = Source(
    name="binarized-mnist",
    title="Binarized MNIST",
    base_url="http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",
    sha256={
        "binarized_mnist_train.amat": (
            "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"
        ),
        "binarized_mnist_valid.amat": (
            "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"
        ),
        "binarized_mnist_test.amat": (
            "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"
        ),
    },
)


def load_digits_dataset(
    *, data_dir: PathLike = None, binarize: str = "none", seed: int = 0, download: bool = True
) -> Dataset:
    """scikit-learn's 8x8 digits in [0, 1], split 75/25 stratified with random_state=0."""
    check_mode(binarize)
    digits = load_digits()
    x = (digits.data / 16).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target.astype(np.int64), test_size=0.25, random_state=0, stratify=digits.target
    )
    dataset = Dataset("digits", x_train, x_test, y_train, y_test, (1, 8, 8), "unit")
    return apply_binarize(dataset, binarize, seed)


def _idx_loader(source: Source) -> Callable[..., Dataset]:
    def load(
        *, data_dir: PathLike = None, binarize: str = "none", seed: int = 0, download: bool = True
    ) -> Dataset:
        check_mode(binarize)
        files = locate(source, data_dir, download)
        x_train, y_train, shape = read_idx_pair(
            files["train-images-idx3-ubyte.gz"], files["train-labels-idx1-ubyte.gz"]
        )
        x_test, y_test, test_shape = read_idx_pair(
            files["t10k-images-idx3-ubyte.gz"], files["t10k-labels-idx1-ubyte.gz"]
        )
        for labels, name in ((y_train, "train"), (y_test, "t10k")):
            if labels.max() > 9:
                raise DataError(
                    f"{files[f'{name}-labels-idx1-ubyte.gz']} holds the label {labels.max()}; "
                    f"{source.title} labels are 0 to 9, so check that it is the right file."
                )
        if test_shape != shape:
            raise DataError(
                f"The {source.title} train images are {shape} but the test images are "
                f"{test_shape}; use files from the same release."
            )
        dataset = Dataset(source.name, x_train, x_test, y_train, y_test, (1, *shape), "unit")
        return apply_binarize(dataset, binarize, seed)

    load.__doc__ = f"{source.title} from its gzipped IDX files, pixels scaled to [0, 1]."
    return load


def load_binarized_mnist(
    *, data_dir: PathLike = None, binarize: str = "none", seed: int = 0, download: bool = True
) -> Dataset:
    """Larochelle & Murray's statically binarized MNIST: 50000/10000/10000, no labels."""
    check_mode(binarize)
    if binarize == "dynamic":
        raise DataError(
            "binarized-mnist is already binary, so dynamic binarization does not apply; "
            "use binarize='none', or mnist with binarize='dynamic'."
        )
    files = locate(BINARIZED_MNIST, data_dir, download)
    train, valid, test = (
        read_amat(files[f"binarized_mnist_{split}.amat"]) for split in ("train", "valid", "test")
    )
    return Dataset("binarized-mnist", train, test, None, None, (1, 28, 28), "binary", valid=valid)


DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits_dataset,
    "mnist": _idx_loader(MNIST),
    "fashion-mnist": _idx_loader(FASHION_MNIST),
    "binarized-mnist": load_binarized_mnist,
}
