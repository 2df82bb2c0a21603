"""Datasets: the registered ones (digits, MNIST, Fashion-MNIST, binarized MNIST) and user files.

``load_dataset(source)`` takes a name from ``DATASETS`` or a path to a .npy, .npz or .csv file or
a folder of images, and returns a ``Dataset`` of float32 rows.
"""

from .dataset import Dataset
from .loading import load_dataset
from .registry import DATASETS

__all__ = ["DATASETS", "Dataset", "load_dataset"]
