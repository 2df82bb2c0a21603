"""The semi-supervised VAE: Kingma et al. (2014)'s M2 as a scikit-learn classifier."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.base import ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from ..engine.sources import ColumnsBeside, DataSource, SubsetSource, as_source
from ..exceptions import LabelCollapseWarning
from ..model.nets import build_networks
from ..model.semi_supervised import WEIGHT_COLUMNS, SemiSupervisedModule
from .base import LatentEstimator, require, seed_from, seeded_clone
from .conditions import encode_conditions
from .labels import partial_labels
from .params import document
from .vae import VAE

#: The share of log C under which the unlabelled rows' mean KL(q(y|x) || p(y)) in the last
#: epoch counts as a classifier that stayed close to uniform on them.
LABEL_COLLAPSE_SHARE = 0.1


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

    With ``m1`` it is the paper's M1+M2 stack: a VAE (M1) is fitted on X first, without labels,
    and M2 models its codes z1 in place of X, learning from a fresh draw of each row's z1 from
    q(z1|x) at every step. ``predict``, ``transform`` and the rest read X through M1's
    posterior means; ``sample`` and ``inverse_transform`` decode through M2 and then M1. The
    stack gives no density of X (``score_samples``, ``elbo``, ``kl_divergence`` and
    ``reconstruction_log_prob`` refuse): its M2 is a density of M1's codes.

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
    m1_ : VAE
        With ``m1``: the fitted first model of the stack.
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
        m1=None,
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
        ema_decay: float | None = None,
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
        self.m1 = m1
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
        self.ema_decay = ema_decay
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags

    @property
    def density_model(self) -> bool:
        """M2 is a density model of its rows; the M1+M2 stack is one of M1's codes only."""
        return self.m1 is None

    def _check_params(self) -> None:
        super()._check_params()
        if self.m1 is not None:
            require(
                self.likelihood == "gaussian" and self.binarize is None and not self.standardize,
                "With m1, M2 models M1's real-valued codes: give it likelihood='gaussian', "
                "binarize=None and standardize=False.",
            )

    # ---- the M1+M2 stack ------------------------------------------------------------------
    def fit(
        self,
        X,
        y=None,
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        **fit_params,
    ):
        """Fit the classifier and generator to the rows of X and their labels y (-1 where
        unknown). Returns self.

        With ``m1``, M1 is fitted on X first (its training state in ``checkpoint_dir/m1``, M2's
        in ``checkpoint_dir/m2``, so a stopped fit resumes in either); the other ``fit_params``
        (``callback``, ...: see ``VAE.fit``) are M2's.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The training rows, labelled or not.
        y : array-like of shape (n,)
            Each row's class label, -1 where unknown (``"-1"`` in an array of strings); at
            least one row must have a label.
        checkpoint_dir : path, optional
            Where the training state is saved and resumed from, as in ``VAE.fit``.
        checkpoint_every : int, default=1
            Epochs between checkpoints.
        **fit_params
            Other keyword arguments of ``VAE.fit`` (``callback``, ``log_dir``, ...), for M2.

        Returns
        -------
        self
        """
        if self.m1 is None:
            return super().fit(
                X, y, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, **fit_params
            )
        self._check_params()
        if isinstance(self.m1, FrozenEstimator):
            self.m1_ = self.m1
        else:
            self.m1_ = seeded_clone(self.m1, self.random_state)
        self.m1_.fit(
            X, None, checkpoint_dir=_part(checkpoint_dir, "m1"), checkpoint_every=checkpoint_every
        )
        return super().fit(
            X,
            y,
            checkpoint_dir=_part(checkpoint_dir, "m2"),
            checkpoint_every=checkpoint_every,
            **fit_params,
        )

    def _prepare(self, X, reset: bool, y=None) -> DataSource:
        """M2's rows: X itself, or with ``m1`` each row's code under M1 (in training, the mean
        and log-variance of q(z1|x), for M2 to draw from; else the mean)."""
        if self.m1 is None:
            return super()._prepare(X, reset, y)
        mean, variance = self.m1_.posterior(X)
        if reset:
            self.n_features_in_ = self.m1_.n_features_in_
        rows = np.hstack([mean, np.log(variance)]) if reset else mean
        return self._beside(as_source(rows.astype(np.float32)), y, reset)

    def _build_module(self, n_features: int):
        """M2 over the rows, or over M1's codes."""
        return super()._build_module(n_features if self.m1 is None else self.m1_.n_components)

    def _stack_has_no_density(self, what: str) -> None:
        require(
            self.m1 is None,
            f"The M1+M2 stack gives no {what} of X: its M2 models M1's codes; for densities of "
            "X use its m1_ (a VAE), or M2 without m1.",
        )

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
            input_draws=self.m1 is not None,
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
        """M2 keeps no latent mixture (``sample`` draws z from the prior and y from p(y)); it
        warns if its classifier ended close to uniform on the unlabelled rows."""
        _warn_if_label_collapsed(self.history_[-1]["label"], source.columns, len(self.classes_))

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
        ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.

        Returns
        -------
        ndarray of shape (n, n_classes)
            The class probabilities; each row sums to 1.
        """
        check_is_fitted(self)
        return self._map_data(lambda m, b: m.class_log_prob(m.split(b)[0]).exp(), X)

    def predict_log_proba(self, X) -> np.ndarray:
        """log q(y|x) of every class for each row: (n_samples, n_classes).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.

        Returns
        -------
        ndarray of shape (n, n_classes)
            The log-probabilities, in nats, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        return self._map_data(lambda m, b: m.class_log_prob(m.split(b)[0]), X)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row under q(y|x).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.

        Returns
        -------
        ndarray of shape (n,)
            A class of ``classes_`` for each row.
        """
        check_is_fitted(self)
        return self.classes_[self.predict_log_proba(X).argmax(1)]

    def _labels_or_guess(self, X, y) -> np.ndarray:
        """Each row's label where ``y`` gives one (not -1), else the classifier's best guess."""
        guess = self.predict(X)
        if y is None:
            return guess
        labels, labelled = partial_labels(y, len(guess), require_one=False)
        guess = guess.astype(object) if labels.dtype.kind in "UO" else guess
        guess[labelled] = labels
        return guess

    def reconstruct(self, X, y=None) -> np.ndarray:
        """Decode the code of each row with its label (-1, or no ``y``: the classifier's most
        probable class): (n_samples, n_features).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        y : array-like of shape (n,), optional
            The rows' labels, -1 where unknown; an unknown label (or no ``y``) is the
            classifier's most probable class.

        Returns
        -------
        ndarray of shape (n, n_features)
            The reconstructions, in the data's units.
        """
        check_is_fitted(self)
        labels = self._labels_or_guess(X, y)
        return self.inverse_transform(self.transform(X, labels), labels)

    def inverse_transform(self, X, y=None) -> np.ndarray:
        """The decoder mean E[x|z, y] of each row of codes z given its label y; with ``m1``,
        M2's mean code decoded by M1's mean.

        Parameters
        ----------
        X : array-like of shape (n, n_components)
            Latent codes z.
        y : array-like of shape (n,)
            The class of each code.

        Returns
        -------
        ndarray of shape (n, n_features)
            E[x|z, y] in the data's units.
        """
        codes = super().inverse_transform(X, y)
        return codes if self.m1 is None else self.m1_.inverse_transform(codes)

    def reconstruction_log_prob(self, X, y=None) -> np.ndarray:
        """log p(x | decoder(code of x), y) of each row in nats (see ``VAE``).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        y : array-like of shape (n,), optional
            The rows' labels, -1 where unknown; an unknown label (or no ``y``) is the
            classifier's most probable class.

        Returns
        -------
        ndarray of shape (n,)
            The log-likelihood of each row at its code, in nats.
        """
        self._stack_has_no_density("reconstruction log-likelihood")
        return super().reconstruction_log_prob(X, y)

    # ---- density and generation -----------------------------------------------------------------
    def score_samples(
        self, X, n_samples: int | None = None, *, y=None, precision: str = "fp64"
    ) -> np.ndarray:
        """Importance-sampled log p(x) of each row in nats, summed over the classes:
        log sum_y p(y) p(x|y), each p(x|y) with K = ``n_importance_samples`` draws of
        q(z|x, y); given the rows' labels ``y``, log p(x|y) (-1 for the classifier's most
        probable class). See ``VAE.score_samples``.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        n_samples : int, optional
            K, the importance samples per row and class; ``n_importance_samples`` when not
            given.
        y : array-like of shape (n,), optional
            The rows' labels: with them, log p(x|y); without, log p(x).
        precision : {"fp64", "fp32"}
            The dtype the networks run in, as in ``VAE.score_samples``.

        Returns
        -------
        ndarray of shape (n,)
            log p(x) (or log p(x|y)) of each row, in nats.
        """
        self._stack_has_no_density("log-likelihood")
        if y is not None:
            return super().score_samples(X, n_samples, y=y, precision=precision)
        check_is_fitted(self)
        per_class = self._per_class(
            lambda labels: super(SemiSupervisedVAE, self).score_samples(
                X, n_samples, y=labels, precision=precision
            ),
            X,
        )
        return logsumexp(per_class, axis=1) - math.log(len(self.classes_))

    def elbo(self, X, n_samples: int = 1, *, y=None) -> np.ndarray:
        """The bound of each row in nats: given the rows' labels ``y``, the ELBO of log p(x|y)
        (-1 for the classifier's most probable class); without ``y``, M2's bound on log p(x),
        sum_y q(y|x) (ELBO(x, y) + log p(y)) + H(q(y|x)), the bound ``score_samples(X)``
        tightens.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        n_samples : int, default=1
            K, the draws of z per row (and class).
        y : array-like of shape (n,), optional
            The rows' labels: with them, the ELBO of log p(x|y); without, M2's bound.

        Returns
        -------
        ndarray of shape (n,)
            The bound of each row, in nats.
        """
        self._stack_has_no_density("ELBO")
        if y is not None:
            return super().elbo(X, n_samples, y=y)
        check_is_fitted(self)
        per_class = self._per_class(
            lambda labels: super(SemiSupervisedVAE, self).elbo(X, n_samples, y=labels), X
        )
        log_q = self.predict_log_proba(X)
        return (np.exp(log_q) * (per_class - math.log(len(self.classes_)) - log_q)).sum(1)

    def kl_divergence(self, X, n_samples: int = 1, *, y=None) -> np.ndarray:
        """KL of each row's posterior to the prior in nats: given the labels ``y``, of q(z|x, y)
        to p(z); without ``y``, of the joint q(y|x) q(z|x, y) to p(y) p(z), so that ``elbo(X)``
        is the expected reconstruction term minus this.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        n_samples : int, default=1
            Draws of z per row (and class) for a KL without a closed form.
        y : array-like of shape (n,), optional
            The rows' labels.

        Returns
        -------
        ndarray of shape (n,)
            The KL of each row, in nats.
        """
        self._stack_has_no_density("KL divergence")
        if y is not None:
            return super().kl_divergence(X, n_samples, y=y)
        check_is_fitted(self)
        per_class = self._per_class(
            lambda labels: super(SemiSupervisedVAE, self).kl_divergence(X, n_samples, y=labels),
            X,
        )
        log_q = self.predict_log_proba(X)
        q = np.exp(log_q)
        return (q * (per_class + log_q + math.log(len(self.classes_)))).sum(1)

    def _per_class(self, fn, X) -> np.ndarray:
        """``fn(labels)`` with every row labelled each class in turn: (n_samples, n_classes)."""
        n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
        kind = object if self.classes_.dtype.kind == "U" else self.classes_.dtype
        return np.stack([fn(np.full(n_rows, c, dtype=kind)) for c in self.classes_], axis=1)

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
        is False. With ``m1``, M2 generates codes that M1 decodes (means, or draws).

        Parameters
        ----------
        n_samples : int, default=1
            How many rows to generate.
        condition : label, array-like or None
            The class of every draw, or one class per draw; None draws classes from p(y).
        sampler : {"prior"}
            Where z comes from: the prior, the only choice here.
        mean : bool, default=True
            Give the decoder mean (True) or one draw of p(x|y, z) (False).
        random_state : int, RandomState or None
            Seeds the draws; the estimator's ``random_state`` when None.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            The generated rows, in the data's units.
        """
        check_is_fitted(self)
        require(
            sampler == "prior", "A semi-supervised VAE samples z from the prior: sampler='prior'."
        )
        seed = seed_from(self.random_state if random_state is None else random_state)
        if condition is None:
            rng = np.random.default_rng(seed)
            condition = self.classes_[rng.integers(len(self.classes_), size=n_samples)]
        rows = super().sample(
            n_samples, condition=condition, sampler=sampler, mean=mean, random_state=random_state
        )
        return rows if self.m1 is None else self.m1_.decode_latent(rows, mean=mean, seed=seed)


def _part(checkpoint_dir: str | os.PathLike | None, name: str) -> Path | None:
    """The checkpoint folder of one model of the stack."""
    return None if checkpoint_dir is None else Path(checkpoint_dir) / name


def _warn_if_label_collapsed(label_term: float, columns: np.ndarray, n_classes: int) -> None:
    """LabelCollapseWarning when the unlabelled rows' mean KL(q(y|x) || p(y)) in the last
    epoch is under ``LABEL_COLLAPSE_SHARE`` of log C.

    ``label_term`` is the epoch's ``label`` term per training row (``columns``: the rows'
    one-hot labels, cross-entropy weights and bound flags, the labels' copies included): log C
    for each labelled row in the bound plus the KL of each unlabelled one."""
    in_bound = columns[:, -1] > 0
    labelled = columns[:, :-WEIGHT_COLUMNS].any(axis=1)
    n_labelled, n_unlabelled = int((in_bound & labelled).sum()), int((in_bound & ~labelled).sum())
    if n_unlabelled == 0:
        return
    log_c = math.log(n_classes)
    kl = (label_term * len(columns) - n_labelled * log_c) / n_unlabelled
    if kl >= LABEL_COLLAPSE_SHARE * log_c:
        return
    warnings.warn(
        f"The classifier ended close to uniform on the unlabelled rows (their KL(q(y|x) || p(y)) "
        f"averages {kl:.2f} nats of a possible {log_c:.2f}): the decoder hardly uses the label, "
        "so the unlabelled rows pull the classifier towards uniform instead of teaching it; "
        "on images try the M1+M2 stack (m1=VAE(...)), more epochs or a higher "
        "classifier_weight.",
        LabelCollapseWarning,
        stacklevel=5,
    )


document(SemiSupervisedVAE)
