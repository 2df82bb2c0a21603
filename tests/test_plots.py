"""plots.py: every picture is a real PNG, written atomically, and bad input gets a clear error."""

from statistics import NormalDist

import numpy as np
import pytest
from PIL import Image

from vaekit import plots
from vaekit.exceptions import ConfigError, DataError

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 10, 6)]
RNG = np.random.default_rng(0)

VAE_HISTORY = [
    {
        "epoch": e + 1,
        "loss": 100.0 / (e + 1) + 50,
        "reconstruction": 90.0 / (e + 1) + 40,
        "kl": 10.0 + 0.1 * e,
        "skipped_steps": 0,
        "val_loss": 105.0 / (e + 1) + 52,
        "val_reconstruction": 95.0 / (e + 1) + 41,
        "val_kl": 10.5 + 0.1 * e,
        "seconds": 0.1,
    }
    for e in range(12)
]
AE_HISTORY = [
    {"epoch": e + 1, "loss": 5.0 - e * 0.1, "reconstruction": 4.0, "code_l1": 1.0, "val_loss": 5.5}
    for e in range(6)
]


def _png(path) -> np.ndarray:
    """Open ``path`` as a PNG and return its pixels (RGB), after basic sanity checks."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode in ("RGB", "RGBA")
        assert image.width > 50 and image.height > 50
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    assert pixels.std() > 0, "the picture is blank"
    return pixels


def _is_gray(pixels: np.ndarray) -> bool:
    return bool(
        (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    )


def _no_temp_files(folder) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def _images(n: int, shape) -> np.ndarray:
    return RNG.random((n, int(np.prod(shape))))


def _draw(kind: str, shape, path):
    """Call one image function on random images of ``shape``."""
    d = int(np.prod(shape))
    if kind == "grid":
        return plots.image_grid(_images(64, shape), shape, path, ncols=8, title="Samples")
    if kind == "pairs":
        x = _images(12, shape)
        return plots.reconstruction_pairs(x, x * 0.9, shape, path, title="Reconstructions")
    if kind == "manifold":
        return plots.manifold_grid(_images(25, shape), shape, path, n=5, title="Manifold")
    if kind == "strips":
        strips = RNG.random((3, 7, d))
        return plots.interpolation_strips(strips, shape, path, title="Interpolations")
    if kind == "traversal":
        images = _images(4 * 5, shape)
        values = np.linspace(-2, 2, 5)
        return plots.traversal_grid(images, shape, path, n_dims=4, n_steps=5, values=values)
    raise AssertionError(kind)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("kind", ["grid", "pairs", "manifold", "strips", "traversal"])
def test_image_pictures_are_pngs_in_gray_or_colour(kind, shape, tmp_path):
    path = _draw(kind, shape, tmp_path / f"{kind}.png")
    assert path == tmp_path / f"{kind}.png"
    pixels = _png(path)
    # Grayscale images are drawn with a gray colormap: every pixel of the picture is gray.
    assert _is_gray(pixels) == (shape[0] == 1)
    _no_temp_files(tmp_path)


def test_image_grid_defaults_and_overwrite(tmp_path):
    path = tmp_path / "sub" / "grid.png"  # a missing folder is made
    plots.image_grid(RNG.random((10, 64)) * 16, (1, 8, 8), path)  # digits-like 0..16 data
    first = path.read_bytes()
    plots.image_grid(RNG.random((3, 64)), (1, 8, 8), str(path), ncols=5, value_range=(0, 1))
    assert path.read_bytes() != first
    _png(path)
    _no_temp_files(path.parent)


def test_display_range():
    near_unit = np.array([[-0.01, 0.5, 1.02]])
    assert plots.display_range(None, near_unit) == (0.0, 1.0)
    assert plots.display_range(None, np.array([[0.0, 16.0]])) == (0.0, 16.0)
    assert plots.display_range((0, 16), near_unit) == (0.0, 16.0)
    lo, hi = plots.display_range(None, np.full((2, 3), 4.0))  # a constant image still has a range
    assert lo < 4.0 < hi


@pytest.mark.parametrize("dims", [1, 2, 5])
@pytest.mark.parametrize("labelled", [False, True])
def test_latent_scatter(dims, labelled, tmp_path):
    Z = RNG.normal(size=(200, dims))
    labels = RNG.integers(0, 10, size=200) if labelled else None
    path = plots.latent_scatter(Z, tmp_path / "z.png", labels=labels, title="Embeddings")
    _png(path)
    _no_temp_files(tmp_path)


def test_latent_scatter_many_or_named_classes(tmp_path):
    Z = RNG.normal(size=(120, 3))
    plots.latent_scatter(Z, tmp_path / "many.png", labels=np.arange(120) % 30)
    names = np.array(["cat", "dog", "eel"])[np.arange(120) % 3]
    plots.latent_scatter(Z[:, :2], tmp_path / "named.png", labels=names, what="codes")
    plots.latent_scatter(Z[:1], tmp_path / "one.png")  # a single point, projected
    plots.latent_scatter(np.ones((5, 4)), tmp_path / "flat.png")  # no variance at all
    for name in ("many", "named", "one"):
        _png(tmp_path / f"{name}.png")


def test_principal_axes_project_onto_the_leading_directions():
    X = RNG.normal(size=(500, 4)) * np.array([5.0, 2.0, 0.5, 0.1])
    mean, directions, share = plots.principal_axes(X + 3.0)
    np.testing.assert_allclose(mean, 3.0, atol=0.5)
    np.testing.assert_allclose(directions[0], [1, 0, 0, 0], atol=0.05)  # signs are fixed
    np.testing.assert_allclose(directions[1], [0, 1, 0, 0], atol=0.05)
    assert share[0] > share[1] > 0 and share.sum() < 1


@pytest.mark.parametrize("n", [1, 2, 5, 15])
def test_standard_normal_grid(n):
    grid = plots.standard_normal_grid(n)
    assert grid.shape == (n * n, 2)
    q = np.array([NormalDist().inv_cdf((k + 0.5) / n) for k in range(n)])
    np.testing.assert_allclose(np.unique(grid[:, 0]), q, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.sort(grid[:, 0]), np.sort(-grid[:, 0]))  # symmetric about 0
    np.testing.assert_allclose(grid.mean(axis=0), 0.0, atol=1e-12)
    for i in range(n):
        for j in range(n):
            # row i of the mosaic: constant z2, falling as i grows (z2 increases upwards);
            # column j: z1 increasing left to right.
            np.testing.assert_allclose(grid[i * n + j], [q[j], q[n - 1 - i]], rtol=1e-12)


def test_standard_normal_grid_rejects_bad_n():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="positive integer"):
            plots.standard_normal_grid(bad)


@pytest.mark.parametrize(
    "history",
    [
        VAE_HISTORY,
        AE_HISTORY,
        [{k: v for k, v in r.items() if not k.startswith("val_")} for r in VAE_HISTORY],
        VAE_HISTORY[:1],
        [{"loss": 3.0}, {"loss": float("nan")}, {"loss": 2.0, "kl": None}],  # gaps, no epoch key
    ],
    ids=["vae", "autoencoder", "no-validation", "one-epoch", "gaps"],
)
def test_training_curves(history, tmp_path):
    path = plots.training_curves(history, tmp_path / "curves.png", title="Training")
    pixels = _png(path)
    assert pixels.shape[1] > pixels.shape[0]  # panels side by side
    _no_temp_files(tmp_path)


def test_training_curves_panel_count_follows_the_keys(tmp_path):
    widths = {}
    for name, history in {"three": VAE_HISTORY, "one": [{"loss": 1.0}, {"loss": 0.5}]}.items():
        with Image.open(plots.training_curves(history, tmp_path / f"{name}.png")) as image:
            widths[name] = image.width
    assert widths["three"] > 2 * widths["one"]


@pytest.mark.parametrize("features", [1, 2, 5])
def test_tabular_samples(features, tmp_path):
    data = RNG.normal(size=(300, features)) @ np.diag(np.arange(1, features + 1))
    samples = RNG.normal(size=(100, features))
    _png(plots.tabular_samples(data, samples, tmp_path / "tab.png", title="Samples vs data"))
    _no_temp_files(tmp_path)


def test_bad_inputs_raise_and_write_nothing(tmp_path):
    path = tmp_path / "bad.png"
    good = RNG.random((4, 64))
    nan = good.copy()
    nan[1, 3] = np.nan
    cases = [
        (DataError, "no rows|empty", lambda: plots.image_grid(np.empty((0, 64)), (1, 8, 8), path)),
        (DataError, "NaN", lambda: plots.image_grid(nan, (1, 8, 8), path)),
        (DataError, "2-D", lambda: plots.image_grid(good[0], (1, 8, 8), path)),
        (DataError, "numeric", lambda: plots.image_grid([["a"] * 64], (1, 8, 8), path)),
        (ConfigError, "holds 49 values", lambda: plots.image_grid(good, (1, 7, 7), path)),
        (ConfigError, "channels", lambda: plots.image_grid(RNG.random((4, 80)), (5, 4, 4), path)),
        (ConfigError, "three positive sizes", lambda: plots.image_grid(good, (8, 8), path)),
        (ConfigError, "ncols", lambda: plots.image_grid(good, (1, 8, 8), path, ncols=0)),
        (
            ConfigError,
            "value_range",
            lambda: plots.image_grid(good, (1, 8, 8), path, value_range=(1, 0)),
        ),
        (
            DataError,
            "same shape",
            lambda: plots.reconstruction_pairs(good, good[:2], (1, 8, 8), path),
        ),
        (
            ConfigError,
            "image_shape",
            lambda: plots.reconstruction_pairs(good, good, (3, 8, 8), path),
        ),
        (DataError, "n\\*n = 9", lambda: plots.manifold_grid(good, (1, 8, 8), path, n=3)),
        (DataError, "3-D", lambda: plots.interpolation_strips(good, (1, 8, 8), path)),
        (
            ConfigError,
            "image_shape",
            lambda: plots.interpolation_strips(good[None], (1, 4, 4), path),
        ),
        (
            DataError,
            "n_dims \\* n_steps",
            lambda: plots.traversal_grid(good, (1, 8, 8), path, n_dims=3, n_steps=2),
        ),
        (
            ConfigError,
            "n_steps",
            lambda: plots.traversal_grid(good, (1, 8, 8), path, n_dims=4, n_steps=0),
        ),
        (DataError, "empty", lambda: plots.latent_scatter(np.empty((0, 2)), path)),
        (DataError, "NaN", lambda: plots.latent_scatter(np.array([[0.0, np.nan]]), path)),
        (
            DataError,
            "labels has 3",
            lambda: plots.latent_scatter(good[:, :2], path, labels=[1, 2, 3]),
        ),
        (DataError, "empty", lambda: plots.training_curves([], path)),
        (DataError, "list of per-epoch dicts", lambda: plots.training_curves({"loss": 1.0}, path)),
        (DataError, "no finite values", lambda: plots.training_curves([{"epoch": 1}], path)),
        (DataError, "features", lambda: plots.tabular_samples(good, good[:, :3], path)),
        (DataError, "NaN", lambda: plots.tabular_samples(good, nan, path)),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message) as info:
            call()
        text = str(info.value)
        assert text.endswith(".") and "\n" not in text, text  # one sentence
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left
