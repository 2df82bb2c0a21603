"""Row-seeded normal draws: the hash is SplitMix64's, the deviates are standard normal and
independent, and a row's stream depends on nothing but its values, the seed and the index."""

import numpy as np
import torch
from scipy import stats

from vaekit.row_noise import RowNoise, mix, row_keys, standard_normal

MASK = (1 << 64) - 1


def splitmix64_finaliser(z: int) -> int:
    """The reference, in Python's unbounded integers (Steele, Lea & Flood 2014)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_the_hash_is_splitmix64_bit_for_bit():
    words = [0, 1, 2**63 - 1, -(2**63), -1, 0x0123456789ABCDEF, -0x0123456789ABCDEF]
    hashed = mix(torch.tensor(words, dtype=torch.int64)).tolist()
    assert [h & MASK for h in hashed] == [splitmix64_finaliser(w & MASK) for w in words]


def test_the_deviates_are_standard_normal_and_independent():
    X = torch.rand(400, 20, generator=torch.Generator().manual_seed(0))
    eps = standard_normal(row_keys(X, seed=3), 0, 250, 7).numpy()  # odd width: a half pair
    assert eps.shape == (250, 400, 7)
    flat = eps.ravel()
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    assert abs(flat.mean()) < 4 / np.sqrt(flat.size)
    assert abs(flat.var() - 1) < 6 * np.sqrt(2 / flat.size)
    assert np.abs(flat).max() < 6.8
    # Units (the cosine and the sine of a pair among them), rows and draws are uncorrelated.
    by_unit = np.corrcoef(eps.reshape(-1, 7).T)
    assert np.abs(by_unit - np.eye(7)).max() < 0.02
    assert abs(np.corrcoef(eps[:, :-1].ravel(), eps[:, 1:].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(eps[:-1].ravel(), eps[1:].ravel())[0, 1]) < 0.01


def test_rows_that_differ_in_one_value_draw_unrelated_noise():
    X = torch.zeros(2, 784, dtype=torch.float64)
    X[1, 400] = 1.0
    eps = RowNoise(X, seed=0, noise_dim=50).draw(2000)
    assert abs(np.corrcoef(eps[:, 0].ravel(), eps[:, 1].ravel())[0, 1]) < 0.01


def test_a_rows_stream_depends_on_its_values_the_seed_and_the_index_alone():
    X = torch.rand(10, 5, generator=torch.Generator().manual_seed(1))
    in_batch = RowNoise(X, seed=7, noise_dim=4)
    chunked = torch.cat([in_batch.draw(3), in_batch.draw(5)])
    alone = RowNoise(X[6:7], seed=7, noise_dim=4).draw(8)
    assert torch.equal(chunked[:, 6:7], alone)
    assert torch.equal(RowNoise(X.double(), seed=7, noise_dim=4).draw(8).float(), chunked)
    twice = RowNoise(torch.cat([X[2:3], X[2:3]]), seed=7, noise_dim=4).draw(8)
    assert torch.equal(twice[:, 0], twice[:, 1])
    other_seed = RowNoise(X[6:7], seed=8, noise_dim=4).draw(8)
    assert not torch.allclose(other_seed, alone)
    assert chunked.dtype == torch.float32
