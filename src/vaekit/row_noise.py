"""Row-seeded standard-normal draws for held-out numbers, made by tensor operations alone.

A row's draws are a function of its content, the caller's seed and the draw's index: the same
on any batch and in any order (and on any device, up to the last bits of float64's logarithm
and cosine there), with no per-row generator. Each draw is a
counter-based hash (the SplitMix64 finaliser, Steele et al. 2014) of the row's key and the
draw's index, turned into a normal deviate by the Box-Muller transform; the row's key hashes
the float64 bits of its values with their column numbers the same way.

PyTorch's int64 arithmetic wraps around like the unsigned 64-bit arithmetic the hash is written
in (two's complement), except that its right shift copies the sign bit: ``_shift_right`` clears
those bits.
"""

from __future__ import annotations

import math

import torch


def _word(value: int) -> int:
    """``value`` modulo 2**64 as the signed 64-bit integer with the same bits."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


#: SplitMix64's constants (as signed 64-bit integers): the golden-ratio increment and the two
#: multipliers of its finaliser.
_GOLDEN = _word(0x9E3779B97F4A7C15)
_MIX1 = _word(0xBF58476D1CE4E5B9)
_MIX2 = _word(0x94D049BB133111EB)
#: Each hash gives two 32-bit halves: the radius's uniform and the angle's.
_HALF = 1 << 32


def _shift_right(h: torch.Tensor, bits: int) -> torch.Tensor:
    """The unsigned (logical) right shift of int64 ``h``."""
    return (h >> bits) & ((1 << (64 - bits)) - 1)


def mix(h: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser, elementwise on an int64 tensor: a bijection of 64-bit words whose
    every output bit depends on every input bit."""
    h = (h ^ _shift_right(h, 30)) * _MIX1
    h = (h ^ _shift_right(h, 27)) * _MIX2
    return h ^ _shift_right(h, 31)


def row_keys(X: torch.Tensor, seed: int) -> torch.Tensor:
    """One int64 key per row of ``X`` (N, D), from its values' float64 bits and ``seed``.

    Rows equal in float64 get the same key; a float32 row and its float64 copy too.
    """
    bits = X.detach().to(torch.float64).contiguous().view(torch.int64)
    columns = torch.arange(1, bits.shape[1] + 1, device=X.device, dtype=torch.int64)
    keyed = mix(bits + columns * _GOLDEN).sum(dim=1)  # the sum wraps around, as it should
    seed_word = mix(torch.tensor(_word(int(seed) * _GOLDEN), dtype=torch.int64))
    return mix(keyed ^ seed_word.to(X.device))


def standard_normal(keys: torch.Tensor, first: int, n_draws: int, width: int) -> torch.Tensor:
    """Draws ``first`` to ``first + n_draws - 1`` of each key's stream, each of ``width``
    deviates: float64, shape (n_draws, N, width).

    Draw k of a row takes the hashes hash(key, k * m + j), j < m = ceil(width / 2): the two
    32-bit halves of each give the radius and the angle of a Box-Muller pair, whose cosine
    deviate is unit j and whose sine deviate is unit m + j. No deviate is further than 6.8 from
    0 (a chance of 1e-11 for a true normal).
    """
    pairs = (width + 1) // 2
    counter = torch.arange(first * pairs + 1, (first + n_draws) * pairs + 1, device=keys.device)
    h = mix(keys.view(1, -1, 1) + counter.view(n_draws, 1, pairs) * _GOLDEN)
    radius = _shift_right(h, 32).to(torch.float64).add_(0.5).div_(_HALF)
    radius = radius.log_().mul_(-2.0).sqrt_()
    angle = (h & (_HALF - 1)).to(torch.float64).mul_(2 * math.pi / _HALF)
    return torch.cat([radius * angle.cos(), radius.mul_(angle.sin_())], dim=-1)[..., :width]


class RowNoise:
    """Standard-normal draws for each row of X, seeded by the row's content and ``seed``;
    successive ``draw`` calls continue each row's stream.

    The hashing and the float64 arithmetic run on the rows' device, or on the CPU for an Apple
    GPU (MPS), which has no float64.
    """

    def __init__(self, X: torch.Tensor, seed: int, noise_dim: int):
        work = torch.device("cpu") if X.device.type == "mps" else X.device
        self.keys = row_keys(X.to(work), seed)
        self.noise_dim = noise_dim
        self.dtype, self.device = X.dtype, X.device
        self.drawn = 0

    def generator(self, row: int) -> torch.Generator:
        """A CPU generator of row ``row``'s own, seeded from its key, for draws that need one
        (a multinomial choice, a likelihood's sample): the same for the row in any batch."""
        return torch.Generator().manual_seed(int(mix(self.keys[row] ^ _GOLDEN)))

    def draw(self, n_samples: int) -> torch.Tensor:
        """The next ``n_samples`` draws of every row: shape (K, N, noise_dim), on the rows'
        device, in their dtype (made in float64, so a float32 evaluation rounds the same
        draws)."""
        eps = standard_normal(self.keys, self.drawn, n_samples, self.noise_dim)
        self.drawn += n_samples
        return eps.to(self.device, self.dtype)
