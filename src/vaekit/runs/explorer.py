"""What ``vaekit explore`` shows: the latent map of a fitted model's held-out rows, and the
decoder's example at any latent point, as the JSON the explorer page reads.

``Explorer`` takes a fitted estimator and rows (their labels; a conditional model's conditions;
the image shape or the feature names), works out once what the page draws (``state``) and
answers the page's two requests, ``decode`` and ``interpolate``, from their parsed JSON bodies.
It checks every body before any work: exactly L finite numbers within ``limit``, a condition
the model knows, a bounded number of steps; anything else is a ``BadRequest`` that says why.
It reads no file and knows nothing of HTTP (``explorer_server`` serves it), so a model with no
run folder explores as well as a run.

The map: for two latent dimensions, the latent plane itself; for more, the plane of the two
leading principal directions of the rows' codes, through their mean (as the report's latent
picture). The page keeps one full latent vector z: a click at (u, v) moves z within the plane
through it, z + (u - u_z) d1 + (v - v_z) d2, so the sliders' values off the plane stay as they
were, and a slider moves the map's marker to z's projection.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse
from PIL import Image

from ..engine.sources import DataSource
from ..estimators import LatentEstimator
from ..estimators.registry import model_name
from ..exceptions import ConfigError
from ..plots import as_pictures, class_colors, display_range, principal_axes

#: Held-out rows drawn on the map at most; more are a seeded subset of this many.
MAP_ROWS = 5000
#: The least bound on a requested latent value, |z_j| <= limit (twice the largest code's
#: size when that is more, for a model whose codes are not near the standard normal's).
LATENT_LIMIT = 8.0
#: The sliders reach at least this far either side of zero (the standard normal's bulk).
SLIDER_SPAN = 3.0
#: The most decoded points an interpolation strip may ask for.
MAX_STEPS = 32


class BadRequest(ValueError):
    """A request body the explorer does not take; the message says why, in a sentence."""


def check_explorable(estimator) -> LatentEstimator:
    """``estimator`` if the explorer can show it: a fitted VAE or Autoencoder.

    Parameters
    ----------
    estimator : object
        The model to explore.

    Returns
    -------
    LatentEstimator
        The same estimator.

    Raises
    ------
    ConfigError
        For a semi-supervised model, whose decoder needs a class for every code, and a model
        whose codes do not decode alone (``decodes_codes``).
    TypeError
        For an object that is not a vaekit latent-variable estimator.
    """
    if not isinstance(estimator, LatentEstimator):
        raise TypeError(
            f"explore takes a fitted VAE or Autoencoder (or a Run); got {type(estimator).__name__}."
        )
    if not estimator.decodes_codes:
        raise ConfigError(
            f"vaekit explore decodes points of the latent space, and this run's "
            f"{model_name(estimator)} model decodes a code only beside the entries it is given."
        )
    if estimator.needs_labels:
        raise ConfigError(
            "vaekit explore takes a vae or an autoencoder run; a semi_supervised model decodes "
            "each code with a class it infers, which the explorer does not choose yet."
        )
    return estimator


class Explorer:
    """A fitted model and rows, and the page's requests answered for them.

    Parameters
    ----------
    estimator : LatentEstimator
        A fitted VAE or Autoencoder.
    X : array-like of shape (n, n_features)
        The rows whose codes make the map (a run's held-out rows); more than ``MAP_ROWS``
        are a seeded subset.
    labels : array-like of shape (n,), optional
        The rows' labels, which colour the map.
    conditions : array-like, optional
        The rows' conditions, for a conditional model (class labels, or covariates).
    image_shape : tuple of int, optional
        (channels, height, width) of image rows; without it the rows are a table.
    feature_names : sequence of str, optional
        A table's column names (x1, x2, ... without them).
    condition_names : sequence of str, optional
        The covariates' names, for a model conditioned on covariates (c1, c2, ... without).
    title : str
        What the page's heading calls the model.
    """

    def __init__(
        self,
        estimator: LatentEstimator,
        X,
        labels=None,
        conditions=None,
        *,
        image_shape: Sequence[int] | None = None,
        feature_names: Sequence[str] | None = None,
        condition_names: Sequence[str] | None = None,
        title: str = "vaekit explorer",
    ) -> None:
        self.estimator = check_explorable(estimator)
        self.condition = getattr(estimator, "condition", None)
        index = _map_rows(_n_rows(X))
        rows = _take(X, index)
        labels = None if labels is None else np.asarray(labels)[index]
        conditions = None if conditions is None else np.asarray(conditions)[index]
        codes = estimator.transform(rows, conditions)
        self.n_components = codes.shape[1]
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)
        self.limit = float(max(LATENT_LIMIT, math.ceil(2 * np.abs(codes).max())))
        finite = rows[np.isfinite(rows)]
        self.value_range = display_range(None, finite) if finite.size else (0.0, 1.0)
        what = "posterior means" if estimator.density_model else "codes"
        self._state = {
            "title": title,
            "latent_dim": self.n_components,
            "what": what,
            "n_rows": _n_rows(X),
            "limit": self.limit,
            "max_steps": MAX_STEPS,
            "map": _map(codes, labels, what),
            "units": _units(codes, _activity(estimator, rows, conditions, codes), self.limit),
            "start": codes[0].tolist(),
            "data": self._data_shown(rows, feature_names),
            "condition": self._conditions_shown(conditions, condition_names),
        }

    @property
    def state(self) -> dict:
        """What the page draws (GET /api/state): the map's points, plane and legend, the
        latent units in order of activity with their slider ranges, the data's shape or
        features, the condition's choices."""
        return self._state

    def decode(self, body) -> dict:
        """The decoded example at one latent point (POST /api/decode).

        Parameters
        ----------
        body : object
            The parsed JSON body: ``{"z": [L numbers], "condition": ...}``, the condition
            for a conditional model only.

        Returns
        -------
        dict
            ``{"example": ...}``: a PNG data URI for images, the feature values for a table.
        """
        fields = _fields(body, {"z"})
        z = self._latent(fields["z"], "z")
        decoded = self._decoded(z[None], fields.get("condition"))
        return {"example": self._shown(decoded)[0]}

    def interpolate(self, body) -> dict:
        """Decoded points on the straight line between two latent points (POST
        /api/interpolate).

        Parameters
        ----------
        body : object
            The parsed JSON body: ``{"from": [L numbers], "to": [L numbers], "steps": n,
            "condition": ...}``, with 2 <= n <= ``MAX_STEPS``.

        Returns
        -------
        dict
            ``{"examples": [...]}``: ``steps`` decoded examples, ends included.
        """
        fields = _fields(body, {"from", "to", "steps"})
        start, end = self._latent(fields["from"], "from"), self._latent(fields["to"], "to")
        steps = fields["steps"]
        if type(steps) is not int or not 2 <= steps <= MAX_STEPS:
            raise BadRequest(f"steps must be a whole number from 2 to {MAX_STEPS}.")
        t = np.linspace(0.0, 1.0, steps)[:, None]
        decoded = self._decoded((1 - t) * start + t * end, fields.get("condition"))
        return {"examples": self._shown(decoded)}

    # ---- checks of a request ------------------------------------------------------------------
    def _latent(self, value, name: str) -> np.ndarray:
        """A latent vector from JSON: exactly L finite numbers within ±limit."""
        z = _numbers(value, self.n_components, f"{name} must list one number per latent unit")
        if not (np.isfinite(z).all() and np.abs(z).max() <= self.limit):
            raise BadRequest(f"{name} must hold finite numbers from -{self.limit} to {self.limit}.")
        return z

    def _decoded(self, Z: np.ndarray, condition) -> np.ndarray:
        """The decoder's mean at each row of Z, in the data's units, given the condition."""
        if self.condition is None:
            if condition is not None:
                raise BadRequest("This model takes no condition; leave condition out.")
            return self.estimator.inverse_transform(Z)
        given = self._condition_value(condition)
        return self.estimator.inverse_transform(Z, np.repeat([given], len(Z), axis=0))

    def _condition_value(self, value):
        """A conditional model's condition from JSON: one of its classes, or C covariates
        within the range the page offers."""
        shown = self._state["condition"]
        if shown["kind"] == "label":
            if not any(type(value) is type(c) and value == c for c in shown["classes"]):
                raise BadRequest("condition must be one of the classes /api/state lists.")
            return value
        low, high = np.asarray(shown["low"]), np.asarray(shown["high"])
        c = _numbers(value, len(low), "condition must list one value per covariate")
        if not (np.isfinite(c).all() and (c >= low).all() and (c <= high).all()):
            raise BadRequest("condition holds a covariate outside the range /api/state gives.")
        return c

    # ---- what the page shows --------------------------------------------------------------------
    def _shown(self, decoded: np.ndarray) -> list:
        """Decoded rows as the page shows them: PNG data URIs, or rounded feature values."""
        if self.image_shape is None:
            return [[float(f"{v:.6g}") for v in row] for row in decoded]
        pictures = as_pictures(decoded, self.image_shape, self.value_range)
        return [_png_uri(picture) for picture in pictures]

    def _data_shown(self, rows: np.ndarray, feature_names) -> dict:
        if self.image_shape is not None:
            return {"kind": "image", "shape": list(self.image_shape)}
        names = feature_names or [f"x{j + 1}" for j in range(rows.shape[1])]
        with np.errstate(all="ignore"):
            low, high = np.nanmin(rows, axis=0), np.nanmax(rows, axis=0)
        return {
            "kind": "table",
            "features": [str(name) for name in names],
            "low": _rounded(np.nan_to_num(low)),
            "high": _rounded(np.nan_to_num(high)),
        }

    def _conditions_shown(self, conditions, names) -> dict | None:
        """The condition's choices: the classes (starting at the first row's), or each
        covariate's range (the rows' range widened by half of it either side)."""
        est = self.estimator
        if self.condition is None:
            return None
        if self.condition == "label":
            classes = est.classes_.tolist()
            first = conditions[0].item() if conditions is not None else classes[0]
            return {"kind": "label", "classes": classes, "value": first}
        values = np.asarray(conditions, dtype=np.float64).reshape(len(conditions), -1)
        low, high = values.min(axis=0), values.max(axis=0)
        pad = np.where(high > low, (high - low) / 2, 1.0)
        return {
            "kind": "covariates",
            "names": list(names or [f"c{j + 1}" for j in range(values.shape[1])]),
            "low": _rounded(low - pad),
            "high": _rounded(high + pad),
            "value": values[0].tolist(),
        }


def _n_rows(X) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _map_rows(n: int) -> np.ndarray:
    """The rows on the map: all, or a seeded subset of ``MAP_ROWS`` in their order."""
    if n <= MAP_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAP_ROWS, replace=False))


def _take(X, index: np.ndarray) -> np.ndarray:
    """Rows of an array, a sparse matrix or a source, as a float array."""
    if isinstance(X, DataSource):
        return X.rows(index)
    rows = X[index]
    return rows.toarray() if scipy.sparse.issparse(rows) else np.asarray(rows, dtype=np.float64)


def _activity(estimator, rows, conditions, codes) -> np.ndarray:
    """How much each unit's code varies over the rows: a VAE's activity (the variance of its
    posterior means over the prior's), an autoencoder's code variance."""
    if hasattr(estimator, "layer_activity"):
        return estimator.layer_activity(rows, conditions)[0]
    return codes.var(axis=0)


def _units(codes: np.ndarray, activity: np.ndarray, limit: float) -> list[dict]:
    """The latent units, most active first, each with its slider's range: the codes' range,
    and at least ±SLIDER_SPAN, within ±limit."""
    low = np.maximum(np.minimum(codes.min(axis=0), -SLIDER_SPAN), -limit)
    high = np.minimum(np.maximum(codes.max(axis=0), SLIDER_SPAN), limit)
    return [
        {
            "index": int(j),
            "name": f"z{j + 1}",
            "activity": float(f"{activity[j]:.3g}"),
            "low": math.floor(low[j] * 100) / 100,
            "high": math.ceil(high[j] * 100) / 100,
        }
        for j in np.argsort(-activity, kind="stable")
    ]


def _map(codes: np.ndarray, labels, what: str) -> dict:
    """The map's plane (the latent plane, or the codes' two leading principal directions
    through their mean), the rows' points on it and the colour of each label."""
    L = codes.shape[1]
    if L <= 2:
        mean, directions = np.zeros(L), np.eye(2, L)
        axes = [f"z{j + 1} of the {what}" for j in range(L)] + [""] * (2 - L)
    else:
        mean, directions, share = principal_axes(codes)
        axes = [f"PC {k + 1} of the {what} ({share[k]:.0%} of variance)" for k in range(2)]
    points = (codes - mean) @ directions.T
    shown = {
        "mean": mean.tolist(),
        "directions": directions.tolist(),
        "axes": axes,
        "x": _rounded(points[:, 0]),
        "y": _rounded(points[:, 1]),
        "legend": [],
        "label": [],
    }
    if labels is not None:
        classes, index, palette = class_colors(labels)
        pairs = zip(classes, palette, strict=True)
        shown["legend"] = [{"label": str(c), "color": _hex(color)} for c, color in pairs]
        shown["label"] = index.tolist()
    return shown


def _hex(color) -> str:
    return "#" + "".join(f"{round(channel * 255):02x}" for channel in color[:3])


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in values]


def _png_uri(picture: np.ndarray) -> str:
    """An (H, W, C) image in [0, 1] as a PNG data URI (grayscale when C is 1)."""
    pixels = np.round(picture * 255).astype(np.uint8)
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _numbers(value, n: int, rule: str) -> np.ndarray:
    """A JSON list of exactly ``n`` numbers as floats (a number too large for a float becomes
    infinite, for the caller's bounds to refuse); BadRequest(``rule``) otherwise."""
    if not (
        isinstance(value, list) and len(value) == n and all(type(v) in (int, float) for v in value)
    ):
        raise BadRequest(f"{rule} ({n}).")
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError:
        return np.full(n, np.inf)


def _fields(body, required: set[str]) -> dict:
    """The body as a JSON object with the ``required`` fields and, beside them, at most a
    condition."""
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    missing = sorted(required - set(body))
    if missing:
        raise BadRequest(f"The body lacks {', '.join(missing)}.")
    extra = sorted(set(body) - required - {"condition"})
    if extra:
        raise BadRequest(f"The body has fields the explorer does not take: {', '.join(extra)}.")
    return body
