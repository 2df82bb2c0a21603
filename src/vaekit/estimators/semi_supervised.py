"""The semi-supervised VAE: Kingma et al. (2014)'s M2 as a scikit-learn classifier."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ..engine.sources import ColumnsBeside, DataSource, SubsetSource
from ..model.nets import build_networks
from ..model.semi_supervised import SemiSupervisedModule
from .base import LatentEstimator, require, seed_from
from .conditions import encode_conditions
from .labels import partial_labels
from .params import document
from .vae import VAE


class SemiSupervisedVAE(ClassifierMixin, VAE):
    """Semi-supervised VAE (M2, Kingma et al. 2014): a classifier trained on few labels and
    many unlabelled rows, and a class-conditional generator.

    The label y is a latent variable of the model p(y) p(z) p(x|y, z), observed for the
    labelled rows: ``fit(X, y)`` takes ``y = -1`` for an unlabelled row, as scikit-learn's
    ``LabelSpreading`` and ``SelfTrainingClassifier`` do. The classifier q(y|x) learns from the
    unlabelled rows' bound (enumerated over the classes) and from a cross-entropy on the
    labelled rows weighted by ``classifier_weight`` times the rows per label (the paper's
    alpha = 0.1 N). Each labelled row also joins every epoch as copies that train the
    classifier only (as many as that weight, each weighted the same share of it), so that every
    batch holds some of the labels: with 100 labels in 60,000 rows, 5,900 copies.

    ``predict_proba`` is q(y|x), ``predict`` its most probable class and ``score`` the accuracy.
    ``sample(n, condition=c)`` generates rows of class c (of classes drawn from p(y) without
    one); ``transform``, ``reconstruct``, ``elbo`` and ``score_samples`` take the rows' labels
    as ``y`` (-1, or no ``y``, for the classifier's most probable class), and ``score_samples``
    without ``y`` is log p(x), summed over the classes.

    Every row trains; there is no validation split or early stopping (the labels are too few
    to hold any out): training runs for ``max_epochs`` or ``max_time``.

    Attributes
    ----------
    module_ : SemiSupervisedModule
        The trained torch module.
    classes_ : numpy.ndarray
        The classes of the labelled rows, in the order of ``predict_proba``'s columns.
    history_ : list of dict
        Per-epoch loss, reconstruction, kl, label and classification terms (nats per row of
        the epoch, the labelled rows' copies included).
    n_epochs_ : int
        Epochs trained.
    stopped_by_ : {"max_epochs", "max_time"}
        Which budget ended training.
    best_epoch_ : int
        The last epoch (whose weights are kept).
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    needs_labels = True
    # The parts of a VAE that M2 fixes: z has a standard-normal prior, y is the condition.
    condition = "label"
    prior, prior_components, upper_layers, upper_hidden_sizes = "standard_normal", None, (), ()
    encoder = decoder = None
    missing, objective, free_bits = None, "elbo", 0.0
    validation_fraction, patience = 0.0, None

    def __init__(
        self,
        n_components: int = 16,
        *,
        architecture: str = "mlp",
        hidden_sizes: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        image_shape: tuple[int, ...] | None = None,
        channels: tuple[int, ...] = (32, 64),
        likelihood: str = "gaussian",
        sigma: str = "shared",
        sigma_value: float = 1.0,
        sigma_floor: float = 1e-3,
        dispersion: str = "feature",
        library_size: bool = False,
        binarize: float | str | None = None,
        standardize: bool = False,
        classifier_weight: float = 0.1,
        n_samples: int = 1,
        beta: float = 1.0,
        warmup_epochs: int = 0,
        warmup_time: float | str | None = None,
        n_importance_samples: int = 1000,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        learning_rate_schedule: str = "constant",
        max_epochs: int | None = 200,
        max_time: float | str | None = None,
        clip_grad_norm: float | None = None,
        precision: str = "fp32",
        device: str = "auto",
        random_state=None,
        verbose: bool = True,
    ):
        self.n_components = n_components
        self.architecture = architecture
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.image_shape = image_shape
        self.channels = channels
        self.likelihood = likelihood
        self.sigma = sigma
        self.sigma_value = sigma_value
        self.sigma_floor = sigma_floor
        self.dispersion = dispersion
        self.library_size = library_size
        self.binarize = binarize
        self.standardize = standardize
        self.classifier_weight = classifier_weight
        self.n_samples = n_samples
        self.beta = beta
        self.warmup_epochs = warmup_epochs
        self.warmup_time = warmup_time
        self.n_importance_samples = n_importance_samples
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.clip_grad_norm = clip_grad_norm
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags

    # ---- the model and its training rows --------------------------------------------------
    def _make_module(self, encoder, decoder, likelihood, n_features) -> SemiSupervisedModule:
        classifier, _ = build_networks(
            self.architecture,
            n_features=n_features,
            latent_dim=self.n_components,
            encoder_outputs=len(self.classes_),
            decoder_outputs=1,
            hidden_sizes=self.hidden_sizes,
            activation=self.activation,
            image_shape=self.image_shape,
            channels=self.channels,
        )
        return SemiSupervisedModule(
            encoder,
            decoder,
            classifier,
            likelihood,
            self._make_prior(n_features),
            self.n_components,
            len(self.classes_),
            n_samples=self.n_samples,
            kl_weight=float(self.beta),
            dynamic_binarization=self.binarize == "dynamic",
        )

    def _beside(self, prepared: DataSource, y, reset: bool) -> DataSource:
        """Training rows (``reset``): x, y one-hot (zeros where unknown), the cross-entropy
        weight and the bound flag, with the labelled rows' copies after the rows; else x and
        the labels given (zeros where unknown or not given)."""
        if reset:
            return self._training_rows(prepared, y)
        onehot = np.zeros((len(prepared), len(self.classes_)), dtype=np.float32)
        if y is not None:
            labels, labelled = partial_labels(y, len(prepared), require_one=False)
            if labelled.any():
                onehot[labelled] = encode_conditions(self, labels, None)
        return ColumnsBeside(prepared, onehot)

    def _training_rows(self, prepared: DataSource, y) -> DataSource:
        n = len(prepared)
        labels, labelled = partial_labels(y, n)
        self.classes_ = np.unique(labels)
        onehot = np.zeros((n, len(self.classes_)), dtype=np.float32)
        onehot[labelled] = encode_conditions(self, labels, None)
        # The paper's cross-entropy weight alpha = classifier_weight * N, over the labelled rows,
        # shared by each labelled row and its copies.
        weight = float(self.classifier_weight) * n / len(labels)
        copies = max(0, math.ceil(weight) - 1)
        index = np.concatenate([np.arange(n), np.tile(np.flatnonzero(labelled), copies)])
        columns = np.zeros((len(index), len(self.classes_) + 2), dtype=np.float32)
        columns[:, :-2] = onehot[index]
        columns[:, -2] = labelled[index] * (weight / (copies + 1))
        columns[:n, -1] = 1.0  # the rows themselves count in the bound; their copies do not
        rows = prepared if copies == 0 else SubsetSource(prepared, index)
        return ColumnsBeside(rows, columns)

    def _fit_extra(self, source, generator: torch.Generator) -> None:
        """M2 keeps no latent mixture: ``sample`` draws z from the prior and y from p(y)."""

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        return LatentEstimator._extra_tensors(self)

    def _restore_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        LatentEstimator._restore_extra(self, tensors)

    # ---- classification ---------------------------------------------------------------------
    def _map_data(self, fn, X, progress=None, y=None, dtype=torch.float64) -> np.ndarray:
        """``_map`` over the rows of X and their labels, an unknown label (-1, or no ``y``)
        completed with the classifier's most probable class."""
        return super()._map_data(lambda m, b: fn(m, m.complete(b)), X, progress, y, dtype)

    def predict_proba(self, X) -> np.ndarray:
        """q(y|x) of every class for each row: (n_samples, n_classes), columns in the order of
        ``classes_``."""
        check_is_fitted(self)
        return self._map_data(lambda m, b: m.class_log_prob(m.split(b)[0]).exp(), X)

    def predict_log_proba(self, X) -> np.ndarray:
        """log q(y|x) of every class for each row: (n_samples, n_classes)."""
        check_is_fitted(self)
        return self._map_data(lambda m, b: m.class_log_prob(m.split(b)[0]), X)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row under q(y|x)."""
        check_is_fitted(self)
        return self.classes_[self.predict_log_proba(X).argmax(1)]

    # ---- density and generation -----------------------------------------------------------------
    def score_samples(
        self, X, n_samples: int | None = None, *, y=None, precision: str = "fp64"
    ) -> np.ndarray:
        """Importance-sampled log p(x) of each row in nats, summed over the classes:
        log sum_y p(y) p(x|y), each p(x|y) with K = ``n_importance_samples`` draws of
        q(z|x, y); given the rows' labels ``y``, log p(x|y) (-1 for the classifier's most
        probable class). See ``VAE.score_samples``."""
        if y is not None:
            return super().score_samples(X, n_samples, y=y, precision=precision)
        check_is_fitted(self)
        n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
        kind = object if self.classes_.dtype.kind == "U" else self.classes_.dtype
        per_class = [
            super(SemiSupervisedVAE, self).score_samples(
                X, n_samples, y=np.full(n_rows, c, dtype=kind), precision=precision
            )
            for c in self.classes_
        ]
        return logsumexp(np.stack(per_class, axis=1), axis=1) - math.log(len(self.classes_))

    def sample(
        self,
        n_samples: int = 1,
        *,
        condition=None,
        sampler: str = "prior",
        mean: bool = True,
        random_state=None,
    ) -> np.ndarray:
        """Generate rows of class ``condition`` (one class for every draw, or one per draw);
        without one, each draw's class comes from the uniform p(y). z comes from the prior
        (``sampler`` must be 'prior'); the decoder mean, or a draw of p(x|y, z) when ``mean``
        is False."""
        check_is_fitted(self)
        require(
            sampler == "prior", "A semi-supervised VAE samples z from the prior: sampler='prior'."
        )
        if condition is None:
            seed = seed_from(self.random_state if random_state is None else random_state)
            rng = np.random.default_rng(seed)
            condition = self.classes_[rng.integers(len(self.classes_), size=n_samples)]
        return super().sample(
            n_samples, condition=condition, sampler=sampler, mean=mean, random_state=random_state
        )


document(SemiSupervisedVAE)
