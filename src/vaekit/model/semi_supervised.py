"""Kingma et al. (2014)'s M2: a VAE whose label y is a second latent variable, observed or not.

The generative model is p(y) p(z) p(x|y, z) with p(y) uniform over the C classes and p(z) the
standard normal; the inference model is q(y|x) (the classifier) and q(z|x, y). The module reads
rows of D + C values, the data x and then y one-hot (all zeros where the label is unknown), as
a conditional VAE does, so its encoder, decoder and prior are the conditional VAE's.

For a labelled row the bound is log p(x, y) >= E_q(z|x,y)[log p(x|y,z)] + log p(y) - KL(q(z|x,y)
|| p(z)); for an unlabelled row log p(x) >= sum_y q(y|x) (the same bound) + H(q(y|x)), the
bound enumerated over the classes (each unlabelled row runs C times through the decoder, and
through the encoder past its first layer, whose product with x is shared by the classes:
``encode_every_class``). The classifier learns from the unlabelled bound and from a
cross-entropy term on the labelled rows, -alpha log q(y|x) (the paper's alpha = 0.1 N).

Training rows carry two more columns: the weight of the row's cross-entropy term and whether the
row counts in the bound (1) or is a copy of a labelled row that only trains the classifier (0);
see ``estimators/semi_supervised.py``, which makes the copies so that every batch holds some
of the few labelled rows.

In Kingma et al.'s M1+M2 stack, x is the code z1 of a first VAE (M1), and M2 learns from a
fresh draw of z1 ~ q(z1|x) at every step: with ``input_draws`` the training rows hold the mean
and the log-variance of each row's q(z1|x) in place of x, and ``observed`` draws from it (in
eval mode it takes the mean, as every other method is given).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .distributions import DiagonalGaussian, Likelihood
from .modules import VAEModule, same_dtype
from .priors import Prior

#: The training rows' columns after x and y: the cross-entropy weight, then the bound flag.
WEIGHT_COLUMNS = 2


class SemiSupervisedModule(VAEModule):
    """M2: q(y|x) (``classifier``), q(z|x, y), p(x|y, z), a uniform p(y) and ``prior`` p(z).

    ``n_classes`` is C, the width of the one-hot block after x. Rows of D + C values go through
    the conditional VAE's methods (``encode``, ``log_weights``, ...) with their label; ``complete``
    gives an unknown (all-zero) label the classifier's most probable class first.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        classifier: nn.Module,
        likelihood: Likelihood,
        prior: Prior,
        latent_dim: int,
        n_classes: int,
        *,
        n_samples: int = 1,
        kl_weight: float = 1.0,
        dynamic_binarization: bool = False,
        input_draws: bool = False,
    ):
        super().__init__(
            encoder,
            decoder,
            likelihood,
            prior,
            latent_dim,
            n_samples=n_samples,
            kl_weight=kl_weight,
            dynamic_binarization=dynamic_binarization,
            condition_dim=n_classes,
        )
        self.classifier = classifier
        self.n_classes = int(n_classes)
        self.input_draws = input_draws

    def observed(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch as the model sees it; with ``input_draws``, rows of (mean, log-variance)
        of a diagonal Gaussian over x become a draw of x in training, the mean in eval mode."""
        if not self.input_draws:
            return super().observed(batch, generator)
        x, onehot = self.split(batch)
        mean, log_var = x.chunk(2, dim=-1)
        if self.training:
            eps = torch.randn(mean.shape, generator=generator, dtype=x.dtype, device=x.device)
            mean = mean + (0.5 * log_var).exp() * eps
        return torch.cat([mean, onehot], dim=-1)

    def class_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(y|x) of every class for the data rows x (no label block): (N, C)."""
        logits = same_dtype(self.classifier(self.likelihood.encoder_input(x)), x)
        return torch.log_softmax(logits, dim=-1)

    def complete(self, batch: torch.Tensor) -> torch.Tensor:
        """Rows of x and y one-hot with every unknown (all-zero) label replaced by the
        classifier's most probable class."""
        x, onehot = self.split(batch)
        unknown = onehot.sum(-1, keepdim=True) == 0
        if not unknown.any():
            return batch
        guess = nn.functional.one_hot(self.class_log_prob(x).argmax(-1), self.n_classes)
        return torch.cat([x, torch.where(unknown, guess.to(x.dtype), onehot)], dim=-1)

    def labelled_copies(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y one-hot) for every row of x and class y: N C rows, row i's class c at i C + c."""
        every_class = torch.eye(self.n_classes, dtype=x.dtype, device=x.device)
        return x.repeat_interleave(self.n_classes, dim=0), every_class.repeat(x.shape[0], 1)

    def encode_every_class(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x, y) of the data rows x (no label block) for every class y: N C rows, row i's
        class c at i C + c.

        The encoder's first layer is affine in the row [x, onehot(y)], so for an MLP encoder
        its product with x is made once per row and each class adds its own column of the
        weights: on MNIST's pixels that takes nine tenths of the encoder's work off every
        unlabelled row. Any other encoder reads the C labelled copies of each row."""
        n, C = x.shape[0], self.n_classes
        if isinstance(self.encoder, nn.Linear):
            first, rest = self.encoder, nn.Identity()
        elif isinstance(self.encoder, nn.Sequential) and isinstance(self.encoder[0], nn.Linear):
            first, rest = self.encoder[0], self.encoder[1:]
        else:
            return self.encode(torch.cat(self.labelled_copies(x), dim=-1))
        unlabelled = self.encoder_input(torch.cat([x, x.new_zeros(n, C)], dim=-1))
        shared = first(unlabelled)  # x's part of the first layer, and its bias
        per_class = shared[:, None, :] + first.weight[:, -C:].T.to(shared.dtype)  # (n, C, H)
        outputs = rest(per_class.reshape(n * C, per_class.shape[-1]))
        return self.posterior(same_dtype(outputs, x))

    def bound_terms(
        self,
        x: torch.Tensor,
        onehot: torch.Tensor,
        q: DiagonalGaussian,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(-E_q[log p(x|y,z)], KL(q(z|x,y) || p(z))) of each row given its label and its
        posterior q(z|x, y): (M,) each, the expectation over ``n_samples`` draws in training
        and one in eval mode."""
        n_samples = self.n_samples if self.training else 1
        eps = torch.randn(
            (n_samples, x.shape[0], self.latent_dim),
            generator=generator,
            dtype=x.dtype,
            device=x.device,
        )
        z = q.rsample(eps)
        reconstruction = -self.data_log_prob(x, self.decode(z, onehot)).mean(0)
        return reconstruction, self.prior.kl_per_unit(q).sum(-1)

    def forward(self, rows: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The batch's loss terms, each a sum over its rows divided by the batch's size:
        ``reconstruction`` and ``kl`` (of z) of the bound, ``label`` (KL(q(y|x) || p(y)) for an
        unlabelled row, -log p(y) for a labelled one), ``classification`` (the weighted
        cross-entropy of the labelled rows) and ``loss``, the negative bound (its KL weighted
        by ``kl_weight`` in training) plus the cross-entropy."""
        data, weights = rows[:, :-WEIGHT_COLUMNS], rows[:, -WEIGHT_COLUMNS:]
        x, onehot = self.split(self.observed(data, generator))
        log_q = self.class_log_prob(x)  # (N, C)
        labelled = onehot.sum(-1) > 0
        in_bound = weights[:, 1] > 0
        cross_entropy = -(log_q * onehot).sum(-1)  # 0 for an unlabelled row
        classification = (weights[:, 0] * cross_entropy).sum()
        known, unknown = in_bound & labelled, in_bound & ~labelled
        n_known, n_unknown, C = int(known.sum()), int(unknown.sum()), self.n_classes
        copies, every_class = self.labelled_copies(x[unknown])
        q_known = self.encode(torch.cat([x[known], onehot[known]], dim=-1))
        q_every = self.encode_every_class(x[unknown])
        reconstruction, kl = self.bound_terms(
            torch.cat([x[known], copies]),
            torch.cat([onehot[known], every_class]),
            DiagonalGaussian(
                torch.cat([q_known.mean, q_every.mean]),
                torch.cat([q_known.log_var, q_every.log_var]),
            ),
            generator,
        )
        q_unknown = log_q[unknown].exp()  # (n_unknown, C)

        def total(values: torch.Tensor) -> torch.Tensor:
            """A term's sum over the rows: the labelled rows', then the unlabelled rows'
            expectation over q(y|x)."""
            mixed = (q_unknown * values[n_known:].reshape(n_unknown, C)).sum()
            return values[:n_known].sum() + mixed

        log_c = math.log(C)
        label = n_known * log_c + (q_unknown * (log_q[unknown] + log_c)).sum()
        n = rows.shape[0]
        terms = {
            "reconstruction": total(reconstruction) / n,
            "kl": total(kl) / n,
            "label": label / n,
            "classification": classification / n,
        }
        kl_weight = self.kl_weight if self.training else 1.0
        terms["loss"] = (
            terms["reconstruction"] + kl_weight * terms["kl"] + terms["label"]
        ) + terms["classification"]
        return {"loss": terms.pop("loss"), **terms}
