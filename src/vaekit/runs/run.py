"""A trained run as the commands see it: its estimator, run.json, and the data to work on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import load_dataset
from ..estimators import LatentEstimator
from ..exceptions import ConfigError, DataError
from .conditions import split_conditions
from .data import held_out, in_memory, named_labels
from .shift import warn_if_unlike


@dataclass
class Run:
    """A trained run folder: the estimator, the data description and the effective config."""

    folder: Path
    estimator: LatentEstimator
    info: dict

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        shape = self.info["data"].get("image_shape")
        return tuple(shape) if shape else None

    @property
    def condition(self) -> str | None:
        """What the run's model is conditioned on: ``"label"``, column names, or None."""
        return self.info["data"].get("condition")

    def load_data(self, source: str | None = None, data_dir: str | None = None):
        """(X, y, conditions) to work on: ``source`` if given, else the test split of the
        training data.

        ``y`` holds the labels as the data name them: class names where the file gave names.
        ``conditions`` are what the model is conditioned on (the labels, or the columns taken
        out of X), or None for an unconditional run.
        """
        data = self.info["data"]
        missing = getattr(self.estimator, "missing", None) == "ignore"
        if source is None:
            dataset = load_dataset(
                data["source"],
                data_dir=data_dir or data.get("data_dir"),
                binarize=data["binarize"],
                seed=data["seed"],
                missing=missing,
            )
            X, y = held_out(dataset, data["test_fraction"], data["seed"])[1]
            return self._with_conditions(X, named_labels(y, dataset.label_names), dataset)
        dataset = load_dataset(
            source, data_dir=data_dir, binarize=data["binarize"], seed=data["seed"], missing=missing
        )
        parts = [(in_memory(dataset.train), dataset.y_train)]
        if dataset.test is not None:
            parts.append((dataset.test, dataset.y_test))
        labelled = all(p[1] is not None for p in parts)
        y = np.concatenate([p[1] for p in parts]) if labelled else None
        X, y, conditions = self._with_conditions(
            np.concatenate([p[0] for p in parts]), named_labels(y, dataset.label_names), dataset
        )
        expected = self.estimator.n_features_in_
        if X.shape[1] != expected:
            raise DataError(
                f"{source} has {X.shape[1]} features per row, but this run's model was trained "
                f"on {expected}; give data of the same kind as {data['name']}."
            )
        warn_if_unlike(X, data.get("held_out_range"), source)
        return X, y, conditions

    def _with_conditions(self, X, y, dataset):
        X, conditions, _ = split_conditions(
            self.condition, X, y, dataset.feature_names, dataset.name
        )
        return X, y, conditions

    def require_unconditional(self, command: str) -> None:
        """Refuse, in one sentence, a command that does not take a conditional run yet."""
        if self.condition is not None:
            raise ConfigError(
                f"vaekit {command} takes an unconditional run; this run's model is conditioned "
                f"on {self.condition} (--condition)."
            )

    def require_codes_decode(self, command: str) -> None:
        """Refuse, in one sentence, a command that decodes codes alone for a model whose decoder
        also needs the entries it is given."""
        if not self.estimator.decodes_codes:
            raise ConfigError(
                f"vaekit {command} decodes codes alone, and this run's {self.info['model']} "
                "model decodes a code only beside the entries it is given; use vaekit "
                "reconstruct or vaekit impute."
            )

    @property
    def feature_names(self) -> list[str] | None:
        """The training table's column names, if it had a header."""
        return self.info["data"].get("feature_names")
