"""The variational autoencoder estimator."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..bounds import PRECISIONS, elbo, kl, log_likelihood
from ..engine.schedules import Warmup, parse_duration
from ..engine.sources import SubsetSource
from ..exceptions import ConfigError, PosteriorCollapseWarning, TrainingError
from ..imputation import impute
from ..model.hierarchy import StochasticLayer, layer_priors, prior_path, stack_layers
from ..model.modules import VAEModule
from ..model.priors import PRIORS, StandardNormal, make_prior
from .base import LatentEstimator, check_latent, finite_array, require, seed_from
from .conditions import condition_dim, sample_conditions
from .params import document, is_int

#: A latent unit is active when the variance over the data of its posterior mean exceeds this
#: fraction of the unit's variance under the prior (Burda et al. 2016's 0.01 for N(0, I); a
#: learned prior sets its own scale, so the threshold is relative to it).
ACTIVE_UNIT_THRESHOLD = 0.01
#: The latent mixture ``gmm_`` is fitted to the posterior means of at most this many training
#: rows (a random subset of larger data sets): EM over all of MNIST's 60,000 codes took minutes
#: at the end of every fit on a 2-core CPU, for a sampler that more rows hardly improve.
GMM_MAX_ROWS = 10_000


#: Where ``sample`` draws z from: the prior p(z), or the mixture fitted to the codes.
SAMPLERS = ("prior", "gmm")


class VAE(LatentEstimator):
    """Variational autoencoder: a density model, a transformer and a generator.

    Attributes
    ----------
    module_ : VAEModule
        The trained torch module.
    history_ : list of dict
        Per-epoch loss, reconstruction, kl and their validation counterparts (nats/example).
    n_epochs_ : int
        Epochs trained.
    stopped_by_ : {"early_stopping", "max_epochs", "max_time"}
        Why training stopped (a ``ConvergenceWarning`` says when a budget ended it while the
        validation loss was still falling).
    best_epoch_ : int
        The epoch whose weights were kept: the best one after early stopping, else the last.
    gmm_ : sklearn.mixture.GaussianMixture
        The mixture over the posterior means of the training rows (full covariances).
    classes_ : numpy.ndarray
        With ``condition="label"``: the classes seen in ``fit``, in the order of the one-hot
        columns.
    n_covariates_ : int
        With ``condition="covariates"``: the number of covariates per row.
    n_features_in_ : int
        Number of features seen in ``fit``.
    """

    density_model = True  # score_samples is log p(x)
    can_sample = True
    regularizer = "kl"

    def __init__(
        self,
        n_components: int = 2,
        *,
        architecture: str = "mlp",
        hidden_sizes: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        image_shape: tuple[int, ...] | None = None,
        channels: tuple[int, ...] = (32, 64),
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        likelihood: str = "gaussian",
        sigma: str = "shared",
        sigma_value: float = 1.0,
        sigma_floor: float = 1e-3,
        dispersion: str = "feature",
        library_size: bool = False,
        binarize: float | str | None = None,
        standardize: bool = False,
        prior: str = "standard_normal",
        prior_components: int | None = None,
        upper_layers: tuple[int, ...] = (),
        upper_hidden_sizes: tuple[int, ...] = (100, 100),
        condition: str | None = None,
        missing: str | None = None,
        n_samples: int = 1,
        objective: str = "elbo",
        beta: float = 1.0,
        warmup_epochs: int = 0,
        warmup_time: float | str | None = None,
        free_bits: float = 0.0,
        n_importance_samples: int = 1000,
        gmm_components: int = 10,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        learning_rate_schedule: str = "constant",
        max_epochs: int | None = 1000,
        max_time: float | str | None = None,
        validation_fraction: float = 0.1,
        patience: int | None = 20,
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
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.sigma = sigma
        self.sigma_value = sigma_value
        self.sigma_floor = sigma_floor
        self.dispersion = dispersion
        self.library_size = library_size
        self.binarize = binarize
        self.standardize = standardize
        self.prior = prior
        self.prior_components = prior_components
        self.upper_layers = upper_layers
        self.upper_hidden_sizes = upper_hidden_sizes
        self.condition = condition
        self.missing = missing
        self.n_samples = n_samples
        self.objective = objective
        self.beta = beta
        self.warmup_epochs = warmup_epochs
        self.warmup_time = warmup_time
        self.free_bits = free_bits
        self.n_importance_samples = n_importance_samples
        self.gmm_components = gmm_components
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.ema_decay = ema_decay
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        require(
            self.warmup_time is None or self.warmup_epochs == 0,
            "Give warmup_epochs or warmup_time, not both.",
        )
        if self.objective == "iwae":
            kl_only = {
                "beta": self.beta != 1,
                "warmup_epochs": self.warmup_epochs != 0,
                "warmup_time": self.warmup_time is not None,
                "free_bits": self.free_bits != 0,
            }
            given = [name for name, set_ in kl_only.items() if set_]
            require(
                not given,
                f"{' and '.join(given)} shape{'s' if len(given) == 1 else ''} the ELBO's KL "
                "term, which objective='iwae' does not have; leave "
                f"{'it' if len(given) == 1 else 'them'} at the default or train with "
                "objective='elbo'.",
            )
        require(
            self.prior_components is None or PRIORS[self.prior].default_components is not None,
            f"prior_components is for a prior with components (mog, vamp); the {self.prior} "
            "prior has none.",
        )
        needs_condition = PRIORS[self.prior].needs_condition
        require(
            not needs_condition or self.condition is not None,
            f"prior={self.prior!r} is p(z|c): it needs condition='label' or 'covariates', "
            "and the rows' conditions as y in fit.",
        )
        require(
            self.prior != "vamp" or (self.condition is None and not self.upper_layers),
            "prior='vamp' puts the encoder's posteriors at pseudo-inputs on the first latent "
            "layer of an unconditional model; it takes neither condition nor upper_layers.",
        )
        if self.upper_layers:
            require(
                self.condition is None and not needs_condition,
                "upper_layers and a condition do not combine yet; train the conditional model "
                "with one stochastic layer.",
            )
            require(
                self.free_bits == 0,
                "free_bits needs the closed-form KL per unit of one stochastic layer; with "
                "upper_layers the KL is estimated by Monte Carlo.",
            )

    def _check_rows(self, source) -> None:
        if self.prior != "vamp":
            return
        k = self.prior_components or PRIORS["vamp"].default_components
        if k > len(source):
            raise ConfigError(
                f"prior='vamp' with {k} pseudo-inputs needs at least as many training rows, and "
                f"there are {len(source)} (its best mixture is the posteriors of the rows "
                f"themselves); set prior_components to {len(source)} or fewer."
            )

    def _encoder_outputs(self) -> int:
        return 2 * self.n_components

    def _make_prior(self, n_features: int):
        top = self.upper_layers[-1] if self.upper_layers else self.n_components
        prior = make_prior(
            self.prior,
            top,
            n_features,
            self.prior_components,
            condition_dim=condition_dim(self),
            hidden_sizes=self.hidden_sizes,
            activation=self.activation,
        )
        if not self.upper_layers:
            return prior
        return stack_layers(
            self.n_components,
            tuple(self.upper_layers),
            tuple(self.upper_hidden_sizes),
            self.activation,
            prior,
        )

    def _make_module(self, encoder, decoder, likelihood, n_features) -> VAEModule:
        return VAEModule(
            encoder,
            decoder,
            likelihood,
            self._make_prior(n_features),
            self.n_components,
            n_samples=self.n_samples,
            objective=self.objective,
            kl_weight=float(self.beta),
            free_bits=float(self.free_bits),
            dynamic_binarization=self.binarize == "dynamic",
            condition_dim=condition_dim(self),
            missing=self.missing == "ignore",
        )

    def _annealed(self) -> dict[str, Warmup]:
        if self.warmup_epochs:
            return {"kl_weight": Warmup(float(self.beta), self.warmup_epochs, "epochs")}
        if self.warmup_time is not None:
            seconds = parse_duration(self.warmup_time, "warmup_time")
            return {"kl_weight": Warmup(float(self.beta), seconds, "seconds")}
        return {}

    def score_samples(
        self, X, n_samples: int | None = None, *, y=None, precision: str = "fp64"
    ) -> np.ndarray:
        """Importance-sampled log p(x) of each row, in nats, with K = ``n_importance_samples``.

        A lower bound on average that rises towards log p(x) as K grows; the proposal is the
        encoder's q(z|x) (with ``upper_layers``, the joint q(z1|x) q(z2|z1) ...). Each row's
        draws are seeded by its content and ``random_state``, so its score does not depend on
        the other rows of the call. A conditional model gives log p(x|c), the rows' conditions
        c given as ``y``.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows to score.
        n_samples : int, optional
            K, the importance samples per row; ``n_importance_samples`` when not given.
        y : array-like, optional
            The rows' conditions, for a conditional model.
        precision : {"fp64", "fp32"}, default="fp64"
            The dtype the networks run in: ``"fp64"``, the reference, in which a row's score
            does not move with the rows that share its call (scikit-learn's subset
            invariance, to 1e-7), or ``"fp32"``, the same draws rounded, with the log-sum-exp over K
            in float64: about 1.8 times faster per row on a CPU and within 2e-5 nats of the
            reference per row on MNIST (BENCHMARKS.md), but a row's score then moves with its
            batch by float32 rounding (about 1e-6 nats), since the products' kernels depend
            on the shapes. (The estimator's own ``precision`` is training's.)

        Returns
        -------
        log_px : ndarray of shape (n,)
            log p(x) of each row (log p(x|c) given conditions), in nats.
        """
        check_is_fitted(self)
        K = self.n_importance_samples if n_samples is None else n_samples
        require(is_int(K, 1), "n_samples must be a positive integer.")
        require(
            precision in PRECISIONS,
            f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}.",
        )
        seed = seed_from(self.random_state)
        log_px = self._map_data(
            lambda m, x: log_likelihood(m, x, K, seed),
            X,
            progress=f"log p(x), K={K}" if self.verbose else None,
            y=y,
            dtype=PRECISIONS[precision],
        )
        return log_px + self._log_det_scaling()

    def posterior(self, X, y=None) -> tuple[np.ndarray, np.ndarray]:
        """The diagonal Gaussian q(z|x) of each row: (means, variances), each (n, n_components).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        means : ndarray of shape (n, n_components)
            The posterior means, ``transform(X, y)``.
        variances : ndarray of shape (n, n_components)
            The posterior variances.
        """
        check_is_fitted(self)
        both = self._map_data(lambda m, x: _mean_and_log_var(m.encode(x)), X, y=y)
        return both[:, : self.n_components], np.exp(both[:, self.n_components :])

    @property
    def pseudo_inputs_(self) -> np.ndarray | None:
        """The VampPrior's learned pseudo-inputs in the data's units, (K, n_features); None
        for a prior without them."""
        check_is_fitted(self)
        rows = getattr(self.module_.prior, "pseudo_inputs", None)
        if rows is None:
            return None
        return self._to_data_space(rows.detach().cpu().double().numpy())

    def kl_divergence(self, X, n_samples: int = 1, *, y=None) -> np.ndarray:
        """KL(q(z|x) || p(z)) of each row in nats: in closed form where the prior has one, else
        estimated from ``n_samples`` draws of z (the draws ``elbo`` takes, so the ELBO is the
        expected reconstruction term minus this). With ``upper_layers``, the KL of the joint
        posterior over every layer to the joint prior.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        n_samples : int, default=1
            Draws of z per row for a KL without a closed form.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        ndarray of shape (n,)
            KL(q(z|x) || p(z)) of each row, in nats.
        """
        check_is_fitted(self)
        require(is_int(n_samples, 1), "n_samples must be a positive integer.")
        seed = seed_from(self.random_state)
        return self._map_data(lambda m, x: kl(m, x, n_samples, seed), X, y=y)

    def layer_codes(self, X, y=None) -> list[np.ndarray]:
        """The posterior means of every stochastic layer, bottom up: ``transform(X)`` first,
        then, with ``upper_layers``, the mean of q(z2 | z1) at the mean of z1, and so on.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        list of ndarray
            One array per stochastic layer, of shape (n, layer size): (n, n_components) first,
            then (n, upper_layers[0]), ...
        """
        check_is_fitted(self)
        means = self.transform(X, y)
        return [means, *self._upper_codes(means)]

    def _upper_codes(self, means: np.ndarray) -> list[np.ndarray]:
        """The posterior means of the layers above z1 (none without ``upper_layers``), given
        the means of z1."""
        if not isinstance(self.module_.prior, StochasticLayer):
            return []
        upper = self._map(lambda m, z: torch.cat(m.prior.codes(z), dim=-1), means)
        return np.split(upper, np.cumsum(self.upper_layers)[:-1], axis=1)

    def layer_activity(self, X, y=None) -> list[np.ndarray]:
        """How much of each latent unit's prior variance its posterior mean carries across the
        rows of X: Var_x E[z|x] / Var_p(z), per stochastic layer, bottom up.

        Burda et al. (2016)'s activity statistic Var_x E[z|x] divided by the unit's variance
        under the prior (1 for N(0, I), where it is theirs; estimated from one prior draw per
        row for a learned prior, with each row's condition for a conditional one), so that a
        unit counts as active (above ``ACTIVE_UNIT_THRESHOLD``) at the same fraction whatever
        the scale a learned prior chose.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        list of ndarray
            One array per stochastic layer, bottom up, of shape (layer size,): each unit's
            fraction of its prior variance.
        """
        codes = self.layer_codes(X, y)
        variances = self._prior_variances(self._prepare(X, reset=False, y=y))
        return [c.var(0) / v for c, v in zip(codes, variances, strict=True)]

    def _prior_variances(self, source) -> list[np.ndarray]:
        """Each layer's per-unit variance under the prior: exactly 1 where that layer's prior is
        N(0, I), else from one draw of the generative path per row of ``source``."""
        priors = layer_priors(self.module_.prior)
        exact = [np.ones(p.latent_dim) if isinstance(p, StandardNormal) else None for p in priors]
        if all(v is not None for v in exact):
            return exact
        generator = torch.Generator(self._inference_device()).manual_seed(
            seed_from(self.random_state)
        )

        def draws(m, batch):
            path = prior_path(m.prior, len(batch), generator, m.split(batch)[1])
            return torch.cat([layer.to(torch.float64) for layer in path], dim=-1)

        sampled = self._map(draws, source)
        splits = np.cumsum([p.latent_dim for p in priors])[:-1]
        return [
            v if v is not None else layer.var(0)
            for v, layer in zip(exact, np.split(sampled, splits, axis=1), strict=True)
        ]

    def kl_per_unit(self, X, y=None) -> np.ndarray:
        """KL(q(z|x) || p(z)) of each latent unit for each row, in nats: (n, n_components).

        Needs a prior whose KL to q has a closed form per unit (the standard normal has one).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        ndarray of shape (n, n_components)
            The KL of each unit for each row, in nats; a row's sum is its KL.
        """
        check_is_fitted(self)
        require(
            self.module_.prior.closed_form_kl,
            f"The {self.prior} prior has no closed-form KL per latent unit.",
        )
        return self._map_data(lambda m, b: m.kl_per_unit(m.encode(b), m.split(b)[1]), X, y=y)

    def score(self, X, y=None, n_samples: int | None = None) -> float:
        """Average importance-sampled log-likelihood of the rows of X, in nats (of x given its
        condition y for a conditional model; y is ignored otherwise).

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.
        n_samples : int, optional
            K, the importance samples per row; ``n_importance_samples`` when not given.

        Returns
        -------
        float
            The mean of ``score_samples(X, n_samples, y=y)``, in nats per row: comparable with
            scikit-learn's ``PCA.score`` on the same data.
        """
        y = y if self.condition is not None else None
        return float(np.mean(self.score_samples(X, n_samples, y=y)))

    def impute(
        self, X, n_samples: int | None = None, *, y=None, sample: bool = False, random_state=None
    ) -> np.ndarray:
        """X with every NaN filled in, by MIWAE's self-normalised importance sampling.

        Needs a model trained with ``missing="ignore"``. Each missing entry becomes the
        estimate sum_k w_k E[x|z_k] of its mean given the row's observed entries (K draws of
        z from q(z|x_obs), w_k the normalised importance weights), or, with ``sample``, a draw
        from p(x_mis|x_obs): repeated with other ``random_state`` values it gives multiple
        imputations. Observed entries come back unchanged.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            Rows with NaN where a value is missing.
        n_samples : int, optional
            K, the importance samples per row; ``n_importance_samples`` when not given.
        y : array-like, optional
            The rows' conditions, for a conditional model.
        sample : bool
            Draw the missing entries instead of taking their mean.
        random_state : int, RandomState or None
            Seeds the draws; the estimator's ``random_state`` when None.

        Returns
        -------
        ndarray of shape (n, n_features)
            The rows, complete.
        """
        check_is_fitted(self)
        require(
            self.missing == "ignore",
            "impute needs a model of missing values; fit it with missing='ignore'.",
        )
        K = self.n_importance_samples if n_samples is None else n_samples
        require(is_int(K, 1), "n_samples must be a positive integer.")
        seed = seed_from(self.random_state if random_state is None else random_state)
        filled = self._to_data_space(
            self._map_data(lambda m, x: impute(m, x, K, seed, draw=sample), X, y=y)
        )
        original = np.asarray(X, dtype=np.float64) if not sp.issparse(X) else X.toarray()
        return np.where(np.isnan(original), filled, original)

    def elbo(self, X, n_samples: int = 1, *, y=None) -> np.ndarray:
        """The ELBO of each row in nats (the KL in closed form where the prior has one; the
        expectation over K latent samples); given the rows' conditions ``y`` if conditional.

        Parameters
        ----------
        X : array-like of shape (n, n_features)
            The rows.
        n_samples : int, default=1
            K, the draws of z per row over which the reconstruction term is averaged.
        y : array-like, optional
            The rows' conditions, for a conditional model; ignored otherwise.

        Returns
        -------
        ndarray of shape (n,)
            The ELBO of each row, in nats: on average below ``score_samples``.
        """
        check_is_fitted(self)
        require(is_int(n_samples, 1), "n_samples must be a positive integer.")
        seed = seed_from(self.random_state)
        values = self._map_data(lambda m, x: elbo(m, x, n_samples, seed), X, y=y)
        return values + self._log_det_scaling()

    def sample(
        self,
        n_samples: int = 1,
        *,
        condition=None,
        sampler: str = "prior",
        mean: bool = True,
        random_state=None,
    ) -> np.ndarray:
        """Generate rows: z from the prior or from ``gmm_`` (``sampler="gmm"``), then the
        decoder mean, or a draw of p(x|z) when ``mean`` is False.

        A conditional model generates for ``condition``: one class label (or one row of
        covariates) for every draw, or one per draw.

        Parameters
        ----------
        n_samples : int, default=1
            How many rows to generate.
        condition : label, array-like or None
            For a conditional model: a class (or a row of covariates) for every draw, or one
            per draw. Needed by a conditional model; an unconditional one takes none.
        sampler : {"prior", "gmm"}, default="prior"
            Where z comes from: the prior p(z), or ``gmm_``, the Gaussian mixture fitted to
            the posterior means of the training rows.
        mean : bool, default=True
            Give the decoder mean E[x|z] (True) or one draw of p(x|z) (False).
        random_state : int, RandomState or None
            Seeds the draws; the estimator's ``random_state`` when None.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            The generated rows, in the data's units.
        """
        z = self.sample_latent(
            n_samples, condition=condition, sampler=sampler, random_state=random_state
        )
        seed = seed_from(self.random_state if random_state is None else random_state)
        conditions = sample_conditions(self, condition, n_samples)
        return self.decode_latent(z, conditions, mean=mean, seed=seed)

    def decode_latent(self, Z, conditions=None, *, mean: bool = True, seed: int = 0) -> np.ndarray:
        """Rows in the data's units decoded from latent codes: the decoder mean, or a draw of
        p(x|z) seeded by ``seed`` when ``mean`` is False.

        Parameters
        ----------
        Z : ndarray of shape (n, n_components)
            The latent codes.
        conditions : ndarray of shape (n, C), optional
            The encoded conditions beside each code, for a conditional model.
        mean : bool
            The decoder mean (True) or one draw of p(x|z).
        seed : int
            Seeds the draws.

        Returns
        -------
        ndarray of shape (n, n_features)
        """
        check_is_fitted(self)
        Z = check_latent(Z, self.n_components)
        generator = torch.Generator(self._inference_device()).manual_seed(seed)
        rows = Z if conditions is None else np.concatenate([Z, conditions], axis=1)
        if mean:
            out = self._map(lambda m, b: m.likelihood.mean(m.decode(*m.split(b))), rows)
        else:
            out = self._map(
                lambda m, b: m.likelihood.sample(m.decode(*m.split(b)), generator), rows
            )
        return self._to_data_space(out)

    def sample_latent(
        self, n_samples: int = 1, *, condition=None, sampler: str = "prior", random_state=None
    ):
        """Latent codes z: (n_samples, n_components) from the prior (given ``condition`` for a
        conditional model, as in ``sample``) or the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1
            How many codes to draw.
        condition : label, array-like or None
            For a conditional model: a class (or a row of covariates) for every draw, or one
            per draw.
        sampler : {"prior", "gmm"}, default="prior"
            Draw from the prior p(z) or from ``gmm_``.
        random_state : int, RandomState or None
            Seeds the draws; the estimator's ``random_state`` when None.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            The codes, float64; ``decode_latent`` or ``inverse_transform`` decodes them.
        """
        check_is_fitted(self)
        require(is_int(n_samples, 1), "n_samples must be a positive integer.")
        require(sampler in SAMPLERS, "sampler must be 'prior' or 'gmm'.")
        conditions = sample_conditions(self, condition, n_samples)
        seed = seed_from(self.random_state if random_state is None else random_state)
        if sampler == "prior":
            device = self._inference_device()
            generator = torch.Generator(device).manual_seed(seed)
            with torch.no_grad():
                if conditions is None:
                    z = self.module_.prior.sample(n_samples, generator)
                else:
                    c = torch.from_numpy(conditions).to(device)
                    z = self.module_.prior.sample(n_samples, generator, c)
            return z.cpu().numpy().astype(np.float64)
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((n_samples, self.n_components))
        gmm = self.gmm_
        component = rng.choice(len(gmm.weights_), size=n_samples, p=gmm.weights_)
        chol = np.linalg.cholesky(gmm.covariances_)
        return gmm.means_[component] + np.einsum("nij,nj->ni", chol[component], eps)

    def _fit_extra(self, source, generator: torch.Generator) -> None:
        if len(source) > GMM_MAX_ROWS:  # a random subset keeps memory bounded on huge data
            subset = torch.randperm(len(source), generator=generator)[:GMM_MAX_ROWS]
            source = SubsetSource(source, np.sort(subset.numpy()))
        means = self._map(lambda m, x: m.embed(x), source)
        if not np.isfinite(means).all():
            raise TrainingError(
                "Training ended with non-finite latent codes; try a lower learning_rate or "
                "clip_grad_norm."
            )
        if len(means) > 1:
            layers = [means, *self._upper_codes(means)]
            _warn_if_collapsed(layers, self._prior_variances(source), self.objective == "iwae")
        k = min(self.gmm_components, len(means))
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        self.gmm_ = GaussianMixture(k, covariance_type="full", random_state=seed).fit(means)

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        gmm = self.gmm_
        arrays = {"weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_}
        return super()._extra_tensors() | {
            f"gmm.{k}": torch.from_numpy(v) for k, v in arrays.items()
        }

    def _restore_extra(self, tensors: dict[str, torch.Tensor]) -> None:
        super()._restore_extra(tensors)
        if "gmm.weights" not in tensors:
            raise ConfigError("the latent mixture (gmm.*) is missing")
        k, L = len(tensors["gmm.weights"]), self.n_components
        arrays = {
            name: finite_array(tensors.pop(f"gmm.{name}", None), shape, f"gmm.{name}")
            for name, shape in (("weights", (k,)), ("means", (k, L)), ("covariances", (k, L, L)))
        }
        self.gmm_ = mixture_from_arrays(**arrays)


def _warn_if_collapsed(layers: list[np.ndarray], variances: list[np.ndarray], iwae: bool) -> None:
    """A PosteriorCollapseWarning for each stochastic layer none of whose units is active:
    the posterior means vary by less than ACTIVE_UNIT_THRESHOLD of the prior's variance.
    The remedies it names are those the model's objective takes."""
    for index, (means, variance) in enumerate(zip(layers, variances, strict=True)):
        if (means.var(0) > ACTIVE_UNIT_THRESHOLD * variance).any():
            continue
        how = f"by less than {ACTIVE_UNIT_THRESHOLD} of the prior's variance over the training rows"
        if index == 0:
            message = (
                f"No latent unit is active (the posterior means of all {means.shape[1]} vary "
                f"{how}): the posterior collapsed to the prior and the codes carry no "
                "information; try more epochs, "
                + (
                    "a higher learning_rate, or objective='elbo' with a KL warm-up "
                    "(warmup_epochs) or free_bits."
                    if iwae
                    else "a KL warm-up (warmup_epochs), free_bits or a higher learning_rate."
                )
            )
        else:
            message = (
                f"No unit of latent layer {index + 1} is active (the posterior means of all "
                f"{means.shape[1]} vary {how}): that layer collapsed to its prior and carries "
                "nothing about the layer below; try more epochs"
                + (
                    " or fewer upper_layers."
                    if iwae
                    else ", a longer KL warm-up (warmup_epochs), the IWAE objective "
                    "(objective='iwae', which keeps more units active in Burda et al. 2016) or "
                    "fewer upper_layers."
                )
            )
        warnings.warn(message, PosteriorCollapseWarning, stacklevel=4)


def _mean_and_log_var(q) -> torch.Tensor:
    return torch.cat([q.mean, q.log_var], dim=1)


def mixture_from_arrays(weights, means, covariances) -> GaussianMixture:
    """A fitted full-covariance GaussianMixture rebuilt from its three arrays (no pickle)."""
    try:
        chol = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise ConfigError("gmm.covariances must be positive definite") from None
    k = len(weights)
    if k == 0 or abs(weights.sum() - 1) > 1e-6 or (weights < 0).any():
        raise ConfigError("gmm.weights must be probabilities that sum to one")
    gmm = GaussianMixture(k, covariance_type="full")
    gmm.weights_, gmm.means_, gmm.covariances_ = weights, means, covariances
    identity = np.eye(means.shape[1])
    gmm.precisions_cholesky_ = np.stack([np.linalg.solve(c, identity).T for c in chol])
    gmm.precisions_ = np.einsum("kij,klj->kil", gmm.precisions_cholesky_, gmm.precisions_cholesky_)
    gmm.converged_, gmm.n_iter_, gmm.lower_bound_ = True, 0, -np.inf
    return gmm


document(VAE)
