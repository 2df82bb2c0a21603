"""Pictures of data, samples, latent spaces and training, saved as PNG files.

Every function takes NumPy arrays (never a model) and a path, draws on a standalone matplotlib
``Figure`` rendered by the Agg canvas (no display, no pyplot state, no global backend change),
writes the PNG through a temporary file and a rename, and returns the path. Images are flat rows
``(n, C*H*W)`` with ``image_shape=(C, H, W)``: grayscale when C is 1, RGB when C is 3. They are
shown on a fixed value range, ``value_range`` or else inferred from the data ([0, 1] when the
values lie near it, otherwise their minimum and maximum), and values outside it are clipped.
"""

from __future__ import annotations

import io as _bytes_io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .exceptions import ConfigError, DataError
from .io import write_atomic

__all__ = [
    "comparison_bars",
    "image_grid",
    "image_mosaic",
    "image_tiles",
    "interpolation_strips",
    "latent_scatter",
    "manifold_grid",
    "pairs_mosaic",
    "reconstruction_pairs",
    "standard_normal_grid",
    "tabular_samples",
    "training_curves",
    "traversal_grid",
]

PathLike = str | os.PathLike
_DPI = 100
_PAD_VALUE = 0.5  # mid grey between images, visible on white-on-black digits and on photos
_DATA_COLOR, _SAMPLE_COLOR, _VAL_COLOR = "tab:blue", "tab:orange", "tab:orange"


# --- input checks ---------------------------------------------------------------------------


def _rows(array, what: str, ndim: int = 2) -> np.ndarray:
    """``array`` as a finite float array with ``ndim`` dimensions and at least one row."""
    try:
        a = np.asarray(array, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be a numeric array.") from None
    if a.ndim != ndim:
        raise DataError(f"{what} must be a {ndim}-D array, got shape {a.shape}.")
    if a.size == 0:
        raise DataError(f"{what} is empty (shape {a.shape}); there is nothing to plot.")
    if not np.isfinite(a).all():
        raise DataError(f"{what} contains NaN or infinite values; remove them before plotting.")
    return a


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}.")
    return int(value)


def _image_shape(image_shape, n_features: int) -> tuple[int, int, int]:
    """Check that ``image_shape`` is (C, H, W) with C in {1, 3, 4} and C*H*W == n_features."""
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ConfigError(
            f"image_shape must be (channels, height, width), got {image_shape!r}."
        ) from None
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"image_shape must be three positive sizes (C, H, W), got {shape}.")
    if shape[0] not in (1, 3, 4):
        raise ConfigError(
            f"image_shape must have 1 (grayscale), 3 (RGB) or 4 (RGBA) channels, got {shape}."
        )
    if math.prod(shape) != n_features:
        raise ConfigError(
            f"image_shape {shape} holds {math.prod(shape)} values but each row has "
            f"{n_features}; pass the (channels, height, width) the rows were flattened from."
        )
    return shape  # type: ignore[return-value]


def display_range(value_range, *arrays: np.ndarray) -> tuple[float, float]:
    """The (low, high) values shown as black and white."""
    if value_range is not None:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise ConfigError(f"value_range must be (low, high), got {value_range!r}.") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"value_range must be finite with low < high, got {value_range!r}.")
        return lo, hi
    lo = min(float(a.min()) for a in arrays)
    hi = max(float(a.max()) for a in arrays)
    if lo >= -0.25 and hi <= 1.25:
        return 0.0, 1.0
    if hi - lo < 1e-12:
        return lo - 0.5, hi + 0.5
    return lo, hi


def as_pictures(rows: np.ndarray, shape: tuple[int, int, int], value_range) -> np.ndarray:
    """Flat rows as (n, H, W, C) images scaled to [0, 1] and clipped; RGBA images are shown
    as they look over a white page (C = 3)."""
    lo, hi = value_range
    c, h, w = shape
    images = rows.reshape(-1, c, h, w).transpose(0, 2, 3, 1)
    images = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
    if c == 4:
        alpha = images[..., 3:]
        images = images[..., :3] * alpha + (1.0 - alpha)
    return images


# --- drawing helpers ------------------------------------------------------------------------


def _mosaic(images: np.ndarray, nrows: int, ncols: int, pad: int = 1) -> np.ndarray:
    """Tile (n, H, W, C) images row-major into one (rows, cols, C) array with grey gutters."""
    n, h, w, c = images.shape
    mosaic = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), _PAD_VALUE)
    for k in range(min(n, nrows * ncols)):
        r, col = divmod(k, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        mosaic[top : top + h, left : left + w] = images[k]
    return mosaic


def _centres(count: int, size: int, pad: int = 1) -> np.ndarray:
    """Pixel coordinates of the centres of ``count`` cells of ``size`` pixels in a mosaic."""
    return pad + np.arange(count) * (size + pad) + (size - 1) / 2


def _mosaic_figure(mosaic: np.ndarray, title: str | None, margin=(0.3, 0.3)) -> tuple:
    """A figure sized so the mosaic shows at an integer-ish zoom, and its axes."""
    height, width = mosaic.shape[:2]
    zoom = max(1, math.ceil(520 / max(height, width)))
    extra_h = margin[1] + (0.45 if title else 0.0)
    fig = Figure(
        figsize=(width * zoom / _DPI + margin[0], height * zoom / _DPI + extra_h),
        dpi=_DPI,
        layout="constrained",
    )
    ax = fig.add_subplot()
    if mosaic.shape[2] == 1:
        ax.imshow(mosaic[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(mosaic, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return fig, ax


def _save(fig: Figure, path: PathLike) -> Path:
    """Render ``fig`` as PNG and write it to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    fig.clear()
    write_atomic(path, buffer.getvalue())
    return path


def _every(count: int, most: int = 15) -> int:
    """The stride that keeps at most ``most`` tick labels out of ``count``."""
    return max(1, math.ceil(count / most))


# --- images ---------------------------------------------------------------------------------


def image_tiles(
    images, image_shape, *, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Flat image rows as pictures: (n, H, W, C) floats in [0, 1], C = 1 or 3.

    Parameters
    ----------
    images : array-like of shape (n, C*H*W)
        The rows, finite.
    image_shape : tuple of int
        (C, H, W) with 1, 3 or 4 channels; RGBA comes back as it looks over white (C = 3).
    value_range : (low, high), optional
        The values shown as black and white (default: inferred from the rows).

    Returns
    -------
    numpy.ndarray
    """
    rows = _rows(images, "images")
    shape = _image_shape(image_shape, rows.shape[1])
    return as_pictures(rows, shape, display_range(value_range, rows))


def image_mosaic(
    images,
    image_shape,
    *,
    ncols: int | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """The picture ``image_grid`` draws, as an array: the rows of ``images`` tiled ``ncols``
    per row (default: a near square) with grey gutters, (height, width, C) in [0, 1]."""
    tiles = image_tiles(images, image_shape, value_range=value_range)
    n = len(tiles)
    ncols = math.ceil(math.sqrt(n)) if ncols is None else _positive_int(ncols, "ncols")
    ncols = min(ncols, n)
    return _mosaic(tiles, math.ceil(n / ncols), ncols)


def image_grid(
    images,
    image_shape,
    path: PathLike,
    *,
    ncols: int | None = None,
    title: str | None = None,
    value_range: tuple[float, float] | None = None,
) -> Path:
    """Save the rows of ``images`` as a grid, ``ncols`` per row (default: a near square)."""
    mosaic = image_mosaic(images, image_shape, ncols=ncols, value_range=value_range)
    fig, _ = _mosaic_figure(mosaic, title)
    return _save(fig, path)


def reconstruction_pairs(
    originals,
    reconstructions,
    image_shape,
    path: PathLike,
    *,
    ncols: int | None = None,
    title: str | None = None,
    value_range: tuple[float, float] | None = None,
) -> Path:
    """Save originals with their reconstructions directly below, in labelled row pairs.

    Both are shown on the originals' value range (or ``value_range``), so a reconstruction
    that overshoots the data is clipped rather than rescaled.
    """
    mosaic = pairs_mosaic(
        originals, reconstructions, image_shape, ncols=ncols, value_range=value_range
    )
    x = _rows(originals, "originals")  # checked by pairs_mosaic
    height = _image_shape(image_shape, x.shape[1])[1]
    n_pairs = math.ceil(len(x) / min(len(x), 10 if ncols is None else ncols))
    fig, ax = _mosaic_figure(mosaic, title, margin=(1.3, 0.3))
    ax.set_yticks(_centres(2 * n_pairs, height), ["original", "reconstruction"] * n_pairs)
    ax.tick_params(axis="y", length=0)
    return _save(fig, path)


def pairs_mosaic(
    originals,
    reconstructions,
    image_shape,
    *,
    ncols: int | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """The picture ``reconstruction_pairs`` draws, as an array: rows of ``ncols`` originals
    (default 10), each with their reconstructions below, (height, width, C) in [0, 1]."""
    x = _rows(originals, "originals")
    x_hat = _rows(reconstructions, "reconstructions")
    if x.shape != x_hat.shape:
        raise DataError(
            f"originals {x.shape} and reconstructions {x_hat.shape} must have the same shape."
        )
    shape = _image_shape(image_shape, x.shape[1])
    n = x.shape[0]
    ncols = min(n, 10 if ncols is None else _positive_int(ncols, "ncols"))
    shown = display_range(value_range, x)
    a, b = as_pictures(x, shape, shown), as_pictures(x_hat, shape, shown)
    n_pairs = math.ceil(n / ncols)
    interleaved = []
    for p in range(n_pairs):
        block = slice(p * ncols, (p + 1) * ncols)
        for part in (a[block], b[block]):
            filler = np.full((ncols - len(part), *part.shape[1:]), _PAD_VALUE)
            interleaved.append(np.concatenate([part, filler]))
    return _mosaic(np.concatenate(interleaved), 2 * n_pairs, ncols)


def standard_normal_grid(n: int) -> np.ndarray:
    """The (n*n, 2) latent points of an n x n grid at standard-normal quantiles.

    Each axis takes the values ``NormalDist().inv_cdf(p_k)`` at the probabilities
    ``p_k = (k + 0.5) / n``, k = 0..n-1 (exactly symmetric about 0). Point ``i * n + j`` is
    row i, column j of the mosaic ``manifold_grid`` draws: z1 grows with j (left to right),
    z2 is constant along a row and grows upwards (row 0, the top one, has the largest z2).
    """
    n = _positive_int(n, "n")
    half = [NormalDist().inv_cdf((k + 0.5) / n) for k in range(n // 2)]
    q = np.array([*half, *([0.0] if n % 2 else []), *(-v for v in reversed(half))])
    z1 = np.tile(q, n)
    z2 = np.repeat(q[::-1], n)
    return np.stack([z1, z2], axis=1)


def manifold_grid(
    decoded,
    image_shape,
    path: PathLike,
    *,
    n: int = 15,
    title: str | None = None,
    latents=None,
    value_range: tuple[float, float] | None = None,
) -> Path:
    """Save an n x n mosaic of images decoded at a 2-D latent grid (rows in row-major order).

    ``latents`` is the (n*n, 2) grid the rows were decoded at, for the axis tick labels; by
    default ``standard_normal_grid(n)``, whose ordering the rows must follow.
    """
    n = _positive_int(n, "n")
    rows = _rows(decoded, "decoded")
    if rows.shape[0] != n * n:
        raise DataError(
            f"manifold_grid needs n*n = {n * n} decoded rows for n={n}, got {rows.shape[0]}; "
            "pass the n the grid was made with."
        )
    shape = _image_shape(image_shape, rows.shape[1])
    grid = standard_normal_grid(n) if latents is None else _rows(latents, "latents")
    if grid.shape != (n * n, 2):
        raise DataError(f"latents must have shape ({n * n}, 2), got {grid.shape}.")
    tiles = as_pictures(rows, shape, display_range(value_range, rows))
    fig, ax = _mosaic_figure(_mosaic(tiles, n, n), title, margin=(0.8, 0.7))
    step = _every(n)
    xs, ys = _centres(n, shape[2])[::step], _centres(n, shape[1])[::step]
    ax.set_xticks(xs, [f"{v:.2f}" for v in grid[:n, 0][::step]], fontsize=8)
    ax.set_yticks(ys, [f"{v:.2f}" for v in grid[::n, 1][::step]], fontsize=8)
    ax.set_xlabel("z1 →")
    ax.set_ylabel("z2 →")
    return _save(fig, path)


def interpolation_strips(
    strips,
    image_shape,
    path: PathLike,
    *,
    title: str | None = None,
    value_range: tuple[float, float] | None = None,
) -> Path:
    """Save interpolations, ``strips`` of shape (n_strips, n_steps, D): one strip per row."""
    s = _rows(strips, "strips", ndim=3)
    n_strips, n_steps, d = s.shape
    shape = _image_shape(image_shape, d)
    flat = s.reshape(n_strips * n_steps, d)
    tiles = as_pictures(flat, shape, display_range(value_range, flat))
    fig, ax = _mosaic_figure(_mosaic(tiles, n_strips, n_steps), title, margin=(0.3, 0.5))
    if n_steps > 1:
        ends = _centres(n_steps, shape[2])[[0, -1]]
        ax.set_xticks(ends, ["start", "end"])
        ax.tick_params(axis="x", length=0)
    return _save(fig, path)


def traversal_grid(
    images,
    image_shape,
    path: PathLike,
    *,
    n_dims: int,
    n_steps: int,
    title: str | None = None,
    values: Sequence[float] | None = None,
    units: Sequence[int] | None = None,
    value_range: tuple[float, float] | None = None,
) -> Path:
    """Save latent traversals: row d holds the ``n_steps`` images made by varying unit d.

    Rows are labelled "z1", "z2", ... (or ``z{u+1}`` for the 0-based ``units`` given); the
    optional ``values`` (one per step) label the columns.
    """
    n_dims = _positive_int(n_dims, "n_dims")
    n_steps = _positive_int(n_steps, "n_steps")
    rows = _rows(images, "images")
    if rows.shape[0] != n_dims * n_steps:
        raise DataError(
            f"traversal_grid needs n_dims * n_steps = {n_dims * n_steps} rows, got {rows.shape[0]}."
        )
    units = list(range(n_dims)) if units is None else [int(u) for u in units]
    if len(units) != n_dims:
        raise ConfigError(f"units must name {n_dims} latent units, got {len(units)}.")
    shape = _image_shape(image_shape, rows.shape[1])
    tiles = as_pictures(rows, shape, display_range(value_range, rows))
    fig, ax = _mosaic_figure(_mosaic(tiles, n_dims, n_steps), title, margin=(0.6, 0.5))
    ax.set_yticks(_centres(n_dims, shape[1]), [f"z{u + 1}" for u in units])
    ax.tick_params(axis="y", length=0)
    if values is not None:
        values = np.asarray(values, dtype=float).ravel()
        if values.size != n_steps:
            raise ConfigError(f"values must give {n_steps} numbers, one per step.")
        step = _every(n_steps)
        ax.set_xticks(_centres(n_steps, shape[2])[::step], [f"{v:.2g}" for v in values[::step]])
        ax.set_xlabel("value of the varied unit")
    return _save(fig, path)


# --- scatter plots --------------------------------------------------------------------------


def principal_axes(X: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, the k leading principal directions (rows; sign-fixed) and their variance shares."""
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    directions = np.zeros((k, X.shape[1]))
    m = min(k, vt.shape[0])
    directions[:m] = vt[:m]
    for row in directions:  # deterministic signs: the largest loading is positive
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    total = float((s**2).sum())
    share = np.zeros(k)
    if total > 0:
        share[:m] = s[:m] ** 2 / total
    return mean, directions, share


def class_colors(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Class ids, each point's class index and one colour per class (tab10 / tab20 / viridis)."""
    classes, index = np.unique(labels, return_inverse=True)
    k = len(classes)
    if k <= 10:
        palette = [colormaps["tab10"](i) for i in range(k)]
    elif k <= 20:
        palette = [colormaps["tab20"](i) for i in range(k)]
    else:
        palette = [colormaps["viridis"](i / (k - 1)) for i in range(k)]
    return classes, index.ravel(), palette


def latent_scatter(
    Z,
    path: PathLike,
    *,
    labels=None,
    title: str | None = None,
    what: str = "posterior means",
) -> Path:
    """Save a scatter plot of embeddings ``Z`` (n, L), coloured by ``labels`` when given.

    Two columns are plotted as they are; more are projected onto the two leading principal
    directions of Z (axes "PC 1 of the posterior means (..% of variance)"); one column gives a
    histogram (stacked by class). ``what`` names the embeddings on the axes ("codes" for an
    autoencoder).
    """
    Z = _rows(Z, "Z")
    n, dims = Z.shape
    if labels is not None:
        labels = np.asarray(labels).ravel()
        if labels.shape[0] != n:
            raise DataError(f"labels has {labels.shape[0]} entries but Z has {n} rows.")
        classes, index, palette = class_colors(labels)
    fig = Figure(figsize=(6.4, 5.0), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    if dims == 1:
        bins = max(10, min(60, int(math.sqrt(n)) * 2))
        if labels is None:
            ax.hist(Z[:, 0], bins=bins, color=_DATA_COLOR)
        else:
            groups = [Z[index == c, 0] for c in range(len(classes))]
            names = [str(c) for c in classes]
            ax.hist(groups, bins=bins, stacked=True, color=palette, label=names)
            if len(classes) <= 20:
                ax.legend(title="class", loc="center left", bbox_to_anchor=(1.0, 0.5))
        ax.set_xlabel(f"z1 of the {what}")
        ax.set_ylabel("count")
    else:
        if dims == 2:
            P = Z
            xlabel, ylabel = f"z1 of the {what}", f"z2 of the {what}"
        else:
            mean, directions, share = principal_axes(Z)
            P = (Z - mean) @ directions.T
            xlabel = f"PC 1 of the {what} ({share[0]:.0%} of variance)"
            ylabel = f"PC 2 of the {what} ({share[1]:.0%} of variance)"
        size = float(np.clip(8000 / n, 5, 30))
        order = np.random.default_rng(0).permutation(n)  # no class is painted over the rest
        if labels is None:
            ax.scatter(P[:, 0], P[:, 1], s=size, alpha=0.7, color=_DATA_COLOR, linewidths=0)
        elif len(classes) <= 20:
            colors = np.array(palette)[index]
            ax.scatter(P[order, 0], P[order, 1], s=size, alpha=0.8, c=colors[order], lw=0)
            handles = [
                Line2D([], [], ls="", marker="o", color=palette[c], label=str(classes[c]))
                for c in range(len(classes))
            ]
            ax.legend(handles=handles, title="class", loc="center left", bbox_to_anchor=(1, 0.5))
        else:
            points = ax.scatter(
                P[order, 0], P[order, 1], s=size, alpha=0.8, c=index[order], cmap="viridis", lw=0
            )
            bar = fig.colorbar(points, ax=ax, label="class")
            ticks = np.arange(0, len(classes), _every(len(classes), 10))
            bar.set_ticks(ticks, labels=[str(classes[t]) for t in ticks])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def tabular_samples(data, samples, path: PathLike, *, title: str | None = None) -> Path:
    """Save data and generated samples together, to see whether the samples cover the data.

    Three or more features are projected onto the data's two leading principal components
    (both sets with the data's mean and directions); two are plotted as they are; one gives
    overlaid density histograms.
    """
    X = _rows(data, "data")
    S = _rows(samples, "samples")
    if X.shape[1] != S.shape[1]:
        raise DataError(f"data has {X.shape[1]} features but samples have {S.shape[1]}.")
    dims = X.shape[1]
    fig = Figure(figsize=(6.4, 5.0), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    data_label, sample_label = f"data ({X.shape[0]})", f"samples ({S.shape[0]})"
    if dims == 1:
        bins = np.histogram_bin_edges(np.concatenate([X[:, 0], S[:, 0]]), bins=40)
        ax.hist(X[:, 0], bins=bins, density=True, alpha=0.5, color=_DATA_COLOR, label=data_label)
        ax.hist(S[:, 0], bins=bins, density=True, histtype="step", lw=2, color=_SAMPLE_COLOR)
        ax.plot([], [], color=_SAMPLE_COLOR, lw=2, label=sample_label)
        ax.set_xlabel("feature 1")
        ax.set_ylabel("density")
    else:
        if dims == 2:
            PX, PS = X, S
            xlabel, ylabel = "feature 1", "feature 2"
        else:
            mean, directions, share = principal_axes(X)
            PX, PS = (X - mean) @ directions.T, (S - mean) @ directions.T
            xlabel = f"PC 1 of the data ({share[0]:.0%} of variance)"
            ylabel = f"PC 2 of the data ({share[1]:.0%} of variance)"
        size = float(np.clip(8000 / max(X.shape[0], S.shape[0]), 5, 25))
        ax.scatter(PX[:, 0], PX[:, 1], s=size, alpha=0.5, color=_DATA_COLOR, lw=0)
        ax.scatter(PS[:, 0], PS[:, 1], s=size, alpha=0.6, color=_SAMPLE_COLOR, marker="x")
        ax.plot([], [], ls="", marker="o", color=_DATA_COLOR, label=data_label)
        ax.plot([], [], ls="", marker="x", color=_SAMPLE_COLOR, label=sample_label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)


# --- training -------------------------------------------------------------------------------

_PANELS = (
    ("loss", "Loss", "nats per example"),
    ("reconstruction", "Reconstruction  −log p(x|z)", "nats per example"),
    ("kl", "KL( q(z|x) ‖ p(z) )", "nats per example"),
    ("code_l1", "Sparsity penalty (L1 of the code)", "per example"),
)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


_BEST_STYLE = {"color": "tab:green", "ls": "--"}
_STOP_STYLE = {"color": "tab:red", "ls": ":"}


def _epoch_lines(epochs: np.ndarray, best_epoch, stopped_early: bool) -> list[tuple]:
    """(epoch, legend label, line style) of the kept weights and of an early stop."""
    lines = []
    if best_epoch is not None:
        if not np.isin(best_epoch, epochs):
            raise DataError(f"best_epoch {best_epoch} is not one of the history's epochs.")
        lines.append((best_epoch, f"weights kept (epoch {best_epoch})", _BEST_STYLE))
    if stopped_early:
        last = int(epochs[-1])
        lines.append((last, f"early stop (epoch {last})", _STOP_STYLE))
    return lines


def training_curves(
    history: Sequence[Mapping],
    path: PathLike,
    *,
    title: str | None = None,
    best_epoch: int | None = None,
    stopped_early: bool = False,
) -> Path:
    """Save the per-epoch curves of ``history``: loss, reconstruction and the regulariser.

    Each panel shows the training value and, where recorded, the validation one (``val_``
    keys). Keys that are missing or not finite in an epoch leave a gap, so a diverging run is
    still drawn. ``best_epoch``, the epoch whose weights were kept, is marked by a dashed
    vertical line, and with ``stopped_early`` the last epoch, where early stopping ended
    training, by a dotted one; the first panel's legend names them.
    """
    if isinstance(history, Mapping) or not isinstance(history, Sequence):
        raise DataError("history must be a list of per-epoch dicts.")
    if len(history) == 0:
        raise DataError("history is empty; there are no epochs to plot.")
    if not all(isinstance(record, Mapping) for record in history):
        raise DataError("history must be a list of per-epoch dicts.")
    epochs = np.array([_number(r.get("epoch", i + 1)) for i, r in enumerate(history)], dtype=float)
    series = {}
    for key, *_ in _PANELS:
        for name in (key, f"val_{key}"):
            values = np.array([_number(r.get(name)) for r in history])
            if np.isfinite(values).any():
                series[name] = values
    panels = [p for p in _PANELS if p[0] in series or f"val_{p[0]}" in series]
    if not panels:
        keys = ", ".join(p[0] for p in _PANELS)
        raise DataError(f"history has no finite values under any of: {keys}.")
    fig = Figure(figsize=(4.0 * len(panels) + 0.4, 3.4), dpi=_DPI, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    marker = "o" if len(history) <= 30 else None
    lines = _epoch_lines(epochs, best_epoch, stopped_early)
    for i, (ax, (key, heading, unit)) in enumerate(zip(axes, panels, strict=True)):
        for name, color, label in (
            (key, _DATA_COLOR, "train"),
            (f"val_{key}", _VAL_COLOR, "validation"),
        ):
            if name in series:
                ax.plot(epochs, series[name], marker=marker, ms=3, color=color, label=label)
        for epoch, label, style in lines:
            ax.axvline(epoch, lw=1.2, label=label if i == 0 else "_nolegend_", **style)
        ax.set_title(heading, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


_COMPARISON_PANELS = (
    ("log_likelihood", "held-out log p(x)", "nats per example (higher is better)"),
    ("squared_error", "reconstruction", "squared error per example, data units"),
    ("knn_accuracy", "k-NN on the embeddings", "accuracy"),
)
#: A panel whose largest magnitude exceeds its smallest this many times gets a symmetric-log axis.
_SYMLOG_SPREAD = 1000.0


def comparison_bars(rows: Sequence[Mapping], path: PathLike, *, title: str | None = None) -> Path:
    """Bar charts of model comparison rows (``vaekit.compare``): one panel per measure.

    Every bar is labelled with its value. A model without a number for a measure (an
    autoencoder has no likelihood) gets no bar and the label "none". A panel whose values span
    more than three orders of magnitude (factor analysis' log-likelihood can be -1e7 where the
    others are near 1) is drawn on a symmetric-log axis, linear up to the smallest magnitude, so
    every bar stays visible.
    """
    return _save(_comparison_figure(rows, title), path)


def _comparison_figure(rows: Sequence[Mapping], title: str | None) -> Figure:
    if not rows:
        raise DataError("There are no models to compare.")
    names = [str(r["model"]) for r in rows]
    panels = [p for p in _COMPARISON_PANELS if any(r.get(p[0]) is not None for r in rows)]
    fig = Figure(figsize=(3.6 * len(panels) + 0.4, 3.4), dpi=_DPI, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, heading, unit) in zip(axes, panels, strict=True):
        values = [math.nan if r.get(key) is None else float(r[key]) for r in rows]
        _comparison_panel(ax, names, values, unit)
        ax.set_title(heading, fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def _comparison_panel(ax, names: list[str], values: list[float], unit: str) -> None:
    """One measure's bars, each labelled with its value, on a symmetric-log axis if need be."""
    bars = ax.bar(range(len(values)), np.nan_to_num(values), color=_DATA_COLOR)
    linear_range = _symlog_threshold(values)
    if linear_range is not None:
        ax.set_yscale("symlog", linthresh=linear_range)
        ax.use_sticky_edges = False  # matplotlib's sticky-edge tolerance would clip small bars
        ax.set_yticks(_symlog_ticks(values, linear_range))
        ax.minorticks_off()
        ax.tick_params(axis="y", labelsize=8)
        unit += ";\nsymmetric log scale"
    labels = ["none" if math.isnan(v) else f"{v:.3g}" for v in values]
    ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
    ax.margins(y=0.15)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(range(len(values)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(unit, fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _symlog_threshold(values: list[float]) -> float | None:
    """The smallest nonzero magnitude when the magnitudes span more than _SYMLOG_SPREAD."""
    sizes = [abs(v) for v in values if math.isfinite(v) and v != 0]
    if not sizes or max(sizes) <= _SYMLOG_SPREAD * min(sizes):
        return None
    return min(sizes)


def _symlog_ticks(values: list[float], linear_range: float) -> list[float]:
    """0 and signed powers of ten beyond the linear range, about six in all, evenly strided."""
    low = math.ceil(math.log10(linear_range))
    highs = {}
    for sign in (1, -1):
        sizes = [abs(v) for v in values if math.isfinite(v) and v * sign > 0]
        if sizes:
            highs[sign] = max(low, math.ceil(math.log10(max(sizes))))
    stride = max(1, math.ceil(sum(high - low + 1 for high in highs.values()) / 6))
    steps = (sign * 10.0**k for sign, high in highs.items() for k in range(high, low - 1, -stride))
    return sorted([0.0, *steps])
