"""Every estimator parameter, declared once: its type, its help, its check and its choices.

The defaults live in the estimators' ``__init__`` signatures (scikit-learn needs them there);
everything else about a parameter is here. The parameter checks, the Parameters section of each
estimator's docstring and the command-line flags all derive from these declarations.
"""

from __future__ import annotations

import inspect
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from torch import nn

from ..engine.schedules import parse_duration
from ..exceptions import ConfigError
from ..model.counts import DISPERSIONS
from ..model.distributions import SIGMA_MODES
from ..model.likelihoods import LIKELIHOODS
from ..model.nets import ACTIVATIONS, ARCHITECTURES
from ..model.priors import PRIORS

DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class Param:
    """One estimator parameter.

    Attributes
    ----------
    name : str
        The keyword of the estimators' ``__init__``.
    kind : str
        The numpydoc type text, such as ``"int"`` or ``"{'elbo', 'iwae'}"``.
    help : str
        The numpydoc description, in full sentences; its first sentence is the flag's help.
        It never states the default: the signature holds that.
    check : Callable[[object], bool]
        True for an accepted value; it may raise ConfigError itself (durations do).
    message : str or None
        The ConfigError sentence for a value ``check`` refuses; ``{value!r}`` in it names the
        value. None when ``check`` raises its own.
    choices : tuple or None
        The accepted values, when they are a closed set.
    cli : type or None
        The type of the flag's value (int, float, str, or tuple for comma-separated integers)
        when the default's type does not tell it.
    """

    name: str
    kind: str
    help: str
    check: Callable[[object], bool]
    message: str | None = None
    choices: tuple | None = None
    cli: type | None = None

    def validate(self, value) -> None:
        """Raise ConfigError unless ``value`` passes the check."""
        if not self.check(value):
            raise ConfigError(self.message.format(value=value))

    def summary(self) -> str:
        """The first sentence of the help, without reStructuredText markup."""
        return re.split(r"(?<=\.)\s+", self.help.replace("``", ""), maxsplit=1)[0]


def is_int(value, low: int) -> bool:
    """True for an integer (not a bool) of at least ``low``."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= low


def is_number(value) -> bool:
    """True for a finite real number that is not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _ints(value, lengths: tuple[int, ...] | None = None) -> bool:
    return (
        isinstance(value, (tuple, list))
        and (lengths is None or len(value) in lengths)
        and all(is_int(v, 1) for v in value)
    )


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _duration(name: str) -> Callable[[object], bool]:
    def check(value) -> bool:
        parse_duration(value, name)  # raises ConfigError with its own sentence
        return True

    return check


def _in(choices: tuple) -> Callable[[object], bool]:
    return lambda value: isinstance(value, (str, type(None))) and value in choices


def _one_of(choices: tuple) -> str:
    """Numpydoc type text for a closed set: ``{'a', 'b'}``, with ``or None`` when it holds None."""
    names = ", ".join(repr(c) for c in choices if c is not None)
    return "{" + names + "}" + (" or None" if None in choices else "")


def _either(name: str, choices: tuple) -> str:
    """``name must be 'a', 'b' or 'c'.``"""
    words = [repr(c) for c in choices]
    return f"{name} must be {', '.join(words[:-1])} or {words[-1]}."


def _choice(name: str, choices: tuple, help: str) -> Param:
    return Param(name, _one_of(choices), help, _in(choices), _either(name, choices), choices)


def _registered(name: str, registry: dict, help: str) -> Param:
    """A choice among a registry's names; the check reads the registry as it is at the call, so
    a part registered later (a user's own prior) is accepted."""
    choices = tuple(registry)
    message = f"Unknown {name} {{value!r}}; choose one of {', '.join(choices)}."
    return Param(name, _one_of(choices), help, lambda v: _in(tuple(registry))(v), message, choices)


def _positive_int(name: str, help: str) -> Param:
    return Param(name, "int", help, lambda v: is_int(v, 1), f"{name} must be a positive integer.")


def _non_negative(name: str, help: str) -> Param:
    return Param(
        name, "float", help, lambda v: is_number(v) and v >= 0, f"{name} must be a number >= 0."
    )


#: Said of every option that shapes the ELBO's KL term.
ELBO_ONLY = (
    " The ELBO's only: the IWAE objective has no KL term of its own, and refuses a value other "
    "than the default."
)

_DECLARATIONS = (
    _positive_int(
        "n_components",
        "Size of the latent space: the number of latent units, and the width of "
        "``transform``'s output.",
    ),
    _registered(
        "architecture",
        ARCHITECTURES,
        "The encoder and decoder bodies: a multilayer perceptron, stride-2 convolutions over "
        "``image_shape``, or one affine layer each (probabilistic PCA's shape). Ignored when "
        "``encoder`` and ``decoder`` are given.",
    ),
    Param(
        "hidden_sizes",
        "tuple of int",
        "Hidden layer widths of the MLP encoder; the decoder mirrors them.",
        _ints,
        "hidden_sizes must be positive integers; got {value!r}.",
    ),
    _registered(
        "activation",
        ACTIVATIONS,
        "The nonlinearity between the layers of the MLP and convolutional networks.",
    ),
    Param(
        "image_shape",
        "tuple of int or None",
        "(channels, height, width) of the flat rows, for ``architecture='conv'``; (height, "
        "width) means one channel. None infers square single-channel images.",
        lambda v: v is None or _ints(v, (2, 3)),
        "image_shape must be None or (channels, height, width) as positive integers; "
        "got {value!r}.",
        cli=tuple,
    ),
    Param(
        "channels",
        "tuple of int",
        "Channels of the encoder's convolutions, for ``architecture='conv'``; the decoder "
        "mirrors them.",
        lambda v: _ints(v) and len(v) > 0,
        "channels must be positive integers; got {value!r}.",
    ),
    Param(
        "encoder",
        "torch.nn.Module or None",
        "Your own encoder network: it maps (N, n_features) to (N, 2 * n_components) for a VAE "
        "(means, then log-variances) and to (N, n_components) for an autoencoder. Give it "
        "together with ``decoder``; ``architecture`` and its options are then ignored.",
        lambda v: v is None or isinstance(v, nn.Module),
        "encoder must be a torch.nn.Module or None.",
    ),
    Param(
        "m1",
        "vaekit.VAE or None",
        "The first model of Kingma et al. (2014)'s M1+M2 stack: a VAE (M1) fitted on X first, "
        "without labels, whose codes the semi-supervised model (M2) then models in place of X. "
        "M2 learns from a fresh draw of each row's code from q(z1|x) at every step, and "
        "classifies, embeds and generates through M1's posterior means and decoder. A fitted "
        "VAE wrapped in ``sklearn.frozen.FrozenEstimator`` is used as it is. Give M2 a "
        "Gaussian likelihood for the codes.",
        lambda v: v is None or type(v).__name__ in ("VAE", "FrozenEstimator"),
        "m1 must be a vaekit.VAE (or a fitted one in sklearn.frozen.FrozenEstimator) or None.",
    ),
    Param(
        "decoder",
        "torch.nn.Module or None",
        "Your own decoder network: it maps (N, n_components) to (N, heads * n_features), where "
        "heads is 1, plus 1 for ``sigma='decoder'`` (Gaussian) or ``dispersion='decoder'`` "
        "(negative binomial, ZINB), plus 1 for the ZINB's zero-inflation logits (head-major). "
        "Give it together with ``encoder``.",
        lambda v: v is None or isinstance(v, nn.Module),
        "decoder must be a torch.nn.Module or None.",
    ),
    _registered(
        "likelihood",
        LIKELIHOODS,
        "The decoder distribution p(x|z): Bernoulli for binary data, continuous Bernoulli for "
        "intensities in [0, 1], Gaussian for real values; for counts (whole numbers >= 0) "
        "Poisson, negative binomial, or the zero-inflated negative binomial (ZINB) of "
        "single-cell data.",
    ),
    _choice(
        "dispersion",
        DISPERSIONS,
        "How the inverse dispersion theta of the negative binomial and ZINB likelihoods "
        "(variance mu + mu^2 / theta) is chosen: one learned value per feature, or a second "
        "decoder head, theta(z). The other likelihoods ignore it.",
    ),
    Param(
        "library_size",
        "bool",
        "For the count likelihoods: the decoder gives each row's proportions over the features "
        "and the mean is those proportions times the row's observed total, as in scVI, so "
        "sequencing depth is not learned by the latent code; log p(x) is then given the total. "
        "Decoding a code alone (``inverse_transform``, ``sample``) takes a total from the "
        "log-normal fitted to the training rows' totals.",
        _is_bool,
        "library_size must be True or False.",
    ),
    Param(
        "sigma",
        _one_of(SIGMA_MODES),
        "How the Gaussian likelihood's standard deviation is chosen: fixed at ``sigma_value``, "
        "one learned value for all features (shared), one learned value per feature, or a "
        "second decoder head, sigma(z). The other likelihoods ignore it.",
        _in(SIGMA_MODES),
        f"sigma must be one of {', '.join(SIGMA_MODES)}; got {{value!r}}.",
        SIGMA_MODES,
    ),
    Param(
        "sigma_value",
        "float",
        "The fixed standard deviation, or the starting value of a learned one (which must "
        "then exceed ``sigma_floor``).",
        lambda v: is_number(v) and v > 0,
        "sigma_value and sigma_floor must be positive numbers.",
    ),
    Param(
        "sigma_floor",
        "float",
        "The smallest value a learned standard deviation can take.",
        lambda v: is_number(v) and v > 0,
        "sigma_value and sigma_floor must be positive numbers.",
    ),
    Param(
        "binarize",
        "float, 'dynamic' or None",
        "A number binarises the data as ``X > binarize``; 'dynamic' takes intensities in "
        "[0, 1] and draws a fresh Bernoulli binarisation of every training batch (the other "
        "methods binarise their input once, seeded by ``random_state``). None leaves the data "
        "as they are.",
        lambda v: v is None or v == "dynamic" or is_number(v),
        "binarize must be None, a threshold (a number) or 'dynamic'.",
    ),
    Param(
        "standardize",
        "bool",
        "Centre and scale each feature before the model sees it (``mean_`` and ``scale_``, "
        "saved with the model). Densities stay densities of the original data (the "
        "log-Jacobian is added), and decoded rows come back in the original units. Needs "
        "``likelihood='gaussian'``.",
        _is_bool,
        "standardize must be True or False.",
    ),
    _registered(
        "prior",
        PRIORS,
        "The prior p(z) over the latent space: 'standard_normal' (N(0, I)), 'mog' (a learned "
        "mixture of diagonal Gaussians), 'vamp' (the VampPrior: the mixture of the encoder's "
        "posteriors at learned pseudo-inputs, which start near 0.05 as in the paper) or "
        "'conditional' (p(z|c), a Gaussian whose mean and variance a network of "
        "``hidden_sizes`` computes from the condition). The ELBO, the IWAE bound, the "
        "importance-sampled log p(x) and ``sample`` all go through it; free bits and the KL "
        "per unit need a closed-form KL (standard_normal, conditional).",
    ),
    Param(
        "prior_components",
        "int or None",
        "Components of a mixture prior: the Gaussians of 'mog', the pseudo-inputs of 'vamp'. "
        "None takes the prior's default (10 for mog, 500 for vamp, as in Tomczak & Welling "
        "2018).",
        lambda v: v is None or is_int(v, 1),
        "prior_components must be a positive integer, or None for the prior's default.",
        cli=int,
    ),
    Param(
        "upper_layers",
        "tuple of int",
        "Sizes of stochastic layers stacked above the ``n_components`` latent units, bottom up "
        "(Burda et al. 2016's two-layer MNIST model: n_components=100, upper_layers=(50,)). "
        "Each layer u above z has a Gaussian q(u|z) and p(z|u), networks of "
        "``upper_hidden_sizes``, and ``prior`` is the top layer's. The ELBO, the IWAE bound "
        "and the importance-sampled log p(x) (with the joint proposal) run over every layer; "
        "``transform`` returns the first layer's codes and ``layer_codes`` all of them.",
        lambda v: isinstance(v, (tuple, list)) and all(is_int(u, 1) for u in v),
        "upper_layers must be a tuple of positive integers (empty for one stochastic layer); "
        "got {value!r}.",
        cli=tuple,
    ),
    Param(
        "upper_hidden_sizes",
        "tuple of int",
        "Hidden layer widths of the networks between two stochastic layers (q(u|z); p(z|u) "
        "mirrors them); ``hidden_sizes`` are those between the data and the first layer.",
        lambda v: isinstance(v, (tuple, list)) and all(is_int(u, 1) for u in v),
        "upper_hidden_sizes must be a tuple of positive integers; got {value!r}.",
        cli=tuple,
    ),
    _choice(
        "missing",
        (None, "ignore"),
        "How NaN entries are taken: None refuses them; 'ignore' takes each NaN as a missing "
        "value (MIWAE, Mattei & Frellsen 2019): the encoder reads it as 0 (the feature's mean "
        "when standardised), and the likelihood, the ELBO, the IWAE bound and "
        "``score_samples`` run over each row's observed entries, so log p(x) is that of the "
        "observed part. ``impute`` and ``vaekit.VAEImputer`` fill the missing entries in. A "
        "row with no observed value, or a feature never observed, is refused.",
    ),
    _choice(
        "condition",
        (None, "label", "covariates"),
        "What a conditional VAE (Sohn et al. 2015) is conditioned on: None for none; 'label' "
        "for one class per row, one-hot; 'covariates' for rows of numbers. The conditions are "
        "``fit``'s y, the ``y`` of every method that takes rows, and ``sample``'s "
        "``condition``; the encoder sees them beside x, the decoder beside z, and "
        "prior='conditional' learns p(z|c).",
    ),
    _positive_int("n_samples", "Latent samples per example in the training objective (K)."),
    _choice(
        "objective",
        ("elbo", "iwae"),
        "The training objective: the ELBO with its KL term, or the importance-weighted bound "
        "(IWAE) over ``n_samples`` samples.",
    ),
    _non_negative(
        "beta",
        "The weight on the KL term (a beta-VAE when it is not 1)." + ELBO_ONLY,
    ),
    _non_negative(
        "classifier_weight",
        "The weight of the semi-supervised VAE's cross-entropy on the labelled rows, per row of "
        "the data: Kingma et al. (2014)'s alpha over N, 0.1 in the paper. Each labelled row's "
        "cross-entropy weighs ``classifier_weight`` times the rows per label.",
    ),
    Param(
        "warmup_epochs",
        "int",
        "Epochs over which the KL weight ramps linearly from 0 to ``beta``, growing a little "
        "at every step rather than once per epoch. 0 turns the warm-up off." + ELBO_ONLY,
        lambda v: is_int(v, 0),
        "warmup_epochs must be an integer >= 0.",
    ),
    Param(
        "warmup_time",
        "float, str or None",
        "Training time over which the KL weight ramps linearly from 0 to ``beta``, growing at "
        "every step: seconds, or a string such as '90s', '60m' or '1.5h'. None turns this "
        "warm-up off; it cannot be combined with ``warmup_epochs``." + ELBO_ONLY,
        _duration("warmup_time"),
        cli=str,
    ),
    _non_negative(
        "free_bits",
        "A floor, in nats, on each latent unit's KL (its batch mean): a unit below it is not "
        "pushed further towards the prior." + ELBO_ONLY,
    ),
    _positive_int(
        "n_importance_samples",
        "Importance samples K per row of ``score_samples``, the importance-sampled log-likelihood.",
    ),
    _positive_int(
        "gmm_components",
        "Components of the Gaussian mixture fitted, after training, to the posterior means of "
        "the training rows (the aggregate posterior; a random 10,000 of them on larger data); "
        "``sample(sampler='gmm')`` draws z from it.",
    ),
    _positive_int("batch_size", "Rows per training step."),
    Param(
        "learning_rate",
        "float",
        "The step size of the Adam optimiser.",
        lambda v: is_number(v) and v > 0,
        "learning_rate must be a positive number.",
    ),
    _choice(
        "learning_rate_schedule",
        ("constant", "cosine"),
        "How the learning rate changes: 'constant' keeps it, 'cosine' anneals it to zero over "
        "the training budget (``max_epochs`` or ``max_time``, whichever runs out first), "
        "advancing at every step.",
    ),
    Param(
        "max_epochs",
        "int or None",
        "The most epochs to train, or None for no epoch limit (``max_time`` must then be set).",
        lambda v: v is None or is_int(v, 1),
        "max_epochs must be a positive integer.",
    ),
    Param(
        "max_time",
        "float, str or None",
        "A budget of training time, in seconds or as a string such as '90s', '60m' or '1.5h': "
        "training stops at the end of the epoch that spends it. The learning-rate schedule "
        "runs over whichever of ``max_epochs`` and ``max_time`` runs out first. None sets no "
        "time limit.",
        _duration("max_time"),
        cli=str,
    ),
    Param(
        "validation_fraction",
        "float",
        "The fraction of the training rows held out to watch for early stopping; with 0 the "
        "training loss is watched instead.",
        lambda v: is_number(v) and 0 <= v < 1,
        "validation_fraction must be a number in [0, 1).",
    ),
    Param(
        "patience",
        "int or None",
        "Stop after this many epochs without a better watched loss, and restore the best "
        "weights. None trains until the budget is spent and keeps the last weights.",
        lambda v: v is None or is_int(v, 1),
        "patience must be a positive integer, or None to train for max_epochs.",
    ),
    Param(
        "clip_grad_norm",
        "float or None",
        "Clip the gradient's global norm to this value at every step; None does not clip.",
        lambda v: v is None or (is_number(v) and v > 0),
        "clip_grad_norm must be a positive number or None.",
        cli=float,
    ),
    Param(
        "ema_decay",
        "float or None",
        "Keep an exponential moving average of the weights over about 1 / (1 - ema_decay) "
        "optimiser steps (the plain mean over the first ones) and make it the fitted model: "
        "validation, early stopping and the callback see it, while the optimiser steps the raw "
        "weights, which checkpoints keep beside it. It averages out the noise of the last "
        "steps; 0.999 to 0.9999 are usual. None keeps the last weights.",
        lambda v: v is None or (is_number(v) and 0 < v < 1),
        "ema_decay must be a number in (0, 1), or None.",
        cli=float,
    ),
    _choice(
        "precision",
        ("fp32", "bf16", "fp16"),
        "The precision of the networks during training: 'bf16' and 'fp16' autocast them to "
        "bfloat16 or float16 ('fp16' with a gradient scaler, and on a GPU only), 'fp32' does "
        "not. Log-densities, the KL and log-sum-exp stay float32, as do the weights and the "
        "optimiser; evaluation runs in float64 (score_samples' precision='fp32': float32).",
    ),
    Param(
        "device",
        "str",
        "Where to train: 'auto' picks CUDA when it is available and the CPU otherwise, while "
        "'cpu', 'cuda', 'cuda:N' and 'mps' ask for that device (MPS is used only when asked "
        "for). A device that is not there is an error, never a silent fallback. Saved models "
        "and checkpoints load on any device.",
        lambda v: isinstance(v, str) and DEVICE.match(v) is not None,
        "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.",
    ),
    Param(
        "random_state",
        "int, RandomState instance or None",
        "Seeds the weights, the batches, the noise and evaluation; the same seed gives the "
        "same model.",
        lambda v: v is None or isinstance(v, np.random.RandomState) or (is_int(v, 0) and v < 2**32),
        "random_state must be None, an integer in [0, 2**32) or a numpy RandomState.",
    ),
    Param(
        "verbose",
        "bool",
        "Show a progress bar while training.",
        _is_bool,
        "verbose must be True or False.",
    ),
    _choice(
        "denoising",
        (None, "gaussian", "masking"),
        "Corrupt the input during training: add N(0, noise_level^2) noise ('gaussian'), or "
        "set each feature to zero with probability ``noise_level`` ('masking'); the target "
        "stays the clean row. None trains on clean rows.",
    ),
    _non_negative(
        "noise_level",
        "The noise standard deviation of 'gaussian' denoising, or the masking probability of "
        "'masking'.",
    ),
    _non_negative(
        "sparsity", "The weight of an L1 penalty on the code (the mean over rows of sum |z|)."
    ),
)

#: Every estimator parameter by name.
PARAMS: dict[str, Param] = {param.name: param for param in _DECLARATIONS}


def check_params(estimator) -> None:
    """Check each declared parameter of an estimator's signature, in signature order.

    Parameters
    ----------
    estimator : object
        A scikit-learn-style estimator whose parameters are its ``__init__`` keywords.

    Raises
    ------
    ConfigError
        At the first parameter whose value fails its declaration's check.
    """
    for name in inspect.signature(type(estimator)).parameters:
        if name in PARAMS:
            PARAMS[name].validate(getattr(estimator, name))


def parameters_doc(cls: type) -> str:
    """The numpydoc Parameters section of an estimator class, from PARAMS and its signature.

    Parameters
    ----------
    cls : type
        An estimator class whose ``__init__`` keywords are all declared in PARAMS.

    Returns
    -------
    str
        ``"Parameters\\n----------\\n"`` and one entry per keyword, in signature order, each
        with its type, its default and its description.
    """
    lines = ["Parameters", "----------"]
    for name, p in inspect.signature(cls).parameters.items():
        param = PARAMS[name]
        default = "" if p.default is inspect.Parameter.empty else f", default={p.default!r}"
        lines.append(f"{name} : {param.kind}{default}")
        lines.append(textwrap.indent(textwrap.fill(param.help, 88, break_on_hyphens=False), "    "))
    return "\n".join(lines) + "\n"


def document(cls: type) -> type:
    """Put the Parameters section into an estimator class's docstring, before its Attributes.

    Parameters
    ----------
    cls : type
        An estimator class whose docstring is a summary, optionally followed by an Attributes
        section, and has no Parameters section of its own.

    Returns
    -------
    type
        ``cls``, so that this also serves as a class decorator.
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    head, heading, rest = doc.partition("Attributes\n----------\n")
    cls.__doc__ = f"{head.rstrip()}\n\n{parameters_doc(cls)}"
    if heading:
        cls.__doc__ += f"\n{heading}{rest}\n"
    return cls
