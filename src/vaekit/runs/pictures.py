"""A run's pictures and its report page: what is drawn, the captions, the configuration table."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from .. import plots
from ..estimators import LatentEstimator
from ..estimators.labels import partial_labels
from ..estimators.registry import model_class
from .report import write_report
from .run import Run

#: Importance samples per row when a run of missing values completes its rows for the pictures.
PICTURE_IMPUTE_SAMPLES = 100


def build_report(
    run: Run, X: np.ndarray, y: np.ndarray | None, conditions: np.ndarray | None = None
) -> Path:
    """Draw the run's pictures from held-out rows and write report.html.

    Parameters
    ----------
    run : Run
        The trained run; its folder receives the pictures and the page.
    X, y : ndarray
        Its held-out rows and their labels (None when unlabelled).
    conditions : ndarray, optional
        The rows' conditions, for a conditional run.

    Returns
    -------
    Path
        The report's path.
    """
    info = run.info
    images = draw_pictures(run, X, y, conditions)
    training = info.get("training", {})
    return write_report(
        run.folder,
        title=f"vaekit {info['model']} on {info['data']['name']}",
        metrics={
            **info["metrics"],
            "epochs": info["epochs"],
            "training_seconds": info["training_seconds"],
        },
        held_out=info["data"]["n_test"],
        training={**training, "patience": info["params"].get("patience")},
        command=info.get("command"),
        config=report_config(info),
        history=run.estimator.history_,
        images=images,
        captions=figure_captions(run, X, y),
    )


def draw_curves(run: Run) -> Path:
    """curves.png: the training curves, marking the weights kept and an early stop."""
    training = run.info.get("training", {})
    return plots.training_curves(
        run.estimator.history_,
        run.folder / "curves.png",
        best_epoch=training.get("best_epoch"),
        stopped_early=training.get("stopped_by") == "early_stopping",
    )


def report_config(info: dict) -> dict[str, dict]:
    """run.json's configuration as the report's sections: the run, the data, the parameters."""
    data = info["data"]
    shape = data.get("image_shape")
    return {
        "Run": {
            "model": f"{info['model']} (vaekit.{model_class(info['model']).__name__})",
            "vaekit version": info["vaekit_version"],
        },
        "Data": {
            "name": data["name"],
            "source": data["source"],
            **({"data folder": data["data_dir"]} if data.get("data_dir") else {}),
            "values": _KIND_WORDS.get(data["kind"], data["kind"]),
            "image shape": " × ".join(map(str, shape)) if shape else "none (rows of features)",
            "rows": f"{data['n_train']} for training, {data['n_test']} held out",
            "binarize": data["binarize"],
            "test fraction": f"{data['test_fraction']} (for data without a test split)",
            "seed": data["seed"],
        },
        "Estimator parameters": info["params"],
    }


#: Pseudo-inputs of a VampPrior drawn in the report.
PSEUDO_INPUTS_SHOWN = 64

_KIND_WORDS = {"binary": "binary, 0 or 1", "unit": "in [0, 1]", "real": "real numbers"}


def figure_captions(run: Run, X: np.ndarray, y: np.ndarray | None) -> dict[str, str]:
    """What each picture of ``draw_pictures`` shows, in a sentence, by its title."""
    est, n = run.estimator, len(X)
    code = "posterior mean" if est.density_model else "code"
    codes = f"{code}s"
    dims = est.n_components
    layout = {1: " as a histogram", 2: ""}.get(dims, " on their two leading principal directions")
    features = X.shape[1]
    axes = {1: "as histograms", 2: "on the two features"}.get(
        features, "on the data's two leading principal components"
    )
    span = inspect.signature(traverse).parameters["span"].default
    return {
        "samples": "Draws z ~ p(z) from the prior, each decoded to its mean E[x | z]; none "
        "picked or sorted."
        + (" Each is conditioned on a held-out row's covariates." if run.condition else ""),
        "class-conditional samples": "Each row: 8 draws z ~ p(z | c) for one class c, in the "
        "order of the classes, each decoded to its mean E[x | z, c]; none picked or sorted.",
        "samples against data": f"The {n} held-out rows (dots) and {n} draws from the model "
        f"(crosses), {axes}.",
        "reconstructions": "Held-out images, each above its reconstruction: the decoder's mean "
        f"at its {code}.",
        "latent space": f"The {codes} of the {n} held-out rows{layout}, "
        + ("coloured by label." if y is not None else "uncoloured (the rows have no labels)."),
        "manifold": "The decoder's mean E[x | z] across the 2-D latent space, at evenly spaced "
        "quantiles of the standard-normal prior on each axis.",
        "interpolations": f"Each row decodes a straight line between the {codes} of two "
        "held-out rows, from start to end.",
        "latent traversals": f"Each row sweeps one latent unit from −{span} to {span} with the "
        "others at 0, decoded to the mean.",
        "training curves": _curves_caption(run),
        "pseudo-inputs": _pseudo_inputs_caption(est),
    }


def _pseudo_inputs_caption(est: LatentEstimator) -> str:
    pseudo = getattr(est, "pseudo_inputs_", None)
    if pseudo is None:
        return ""
    which = (
        f"all {len(pseudo)}"
        if len(pseudo) <= PSEUDO_INPUTS_SHOWN
        else (f"the first {PSEUDO_INPUTS_SHOWN} of {len(pseudo)}")
    )
    return (
        f"The VampPrior's pseudo-inputs u_k ({which}): the prior is the mixture of the "
        "encoder's posteriors q(z | u_k); they began as random training rows."
    )


def _curves_caption(run: Run) -> str:
    validated = any("val_loss" in record for record in run.estimator.history_)
    rows = (
        "the training rows (blue) and the validation rows (orange)"
        if validated
        else "the training rows"
    )
    text = f"The training objective and its terms per epoch, on {rows}, in nats per example."
    training = run.info.get("training", {})
    if training.get("best_epoch") is not None:
        text += (
            f" The dashed green line marks epoch {training['best_epoch']}, whose weights were kept"
        )
        if training.get("stopped_by") == "early_stopping":
            text += "; the dotted red line marks where early stopping ended training"
        text += "."
    return text


def draw_pictures(
    run: Run, X: np.ndarray, y: np.ndarray | None, conditions: np.ndarray | None = None
) -> dict[str, Path]:
    """Every picture that suits the model and data, as {caption: path}.

    A run of a model of missing values shows the held-out rows with their missing values
    imputed. A conditional run draws its samples for chosen conditions (8 of every class, a row
    each, for a label run; the held-out rows' covariates otherwise) and leaves out the pictures that
    decode the latent space alone (manifold, interpolations, traversals), as does a model whose
    codes do not decode alone (``decodes_codes``).
    """
    est, shape, folder = run.estimator, run.image_shape, run.folder
    if getattr(est, "missing", None) == "ignore":  # the pictures show the rows completed
        X = est.impute(X, n_samples=PICTURE_IMPUTE_SAMPLES, y=conditions)
    sampler = est.can_sample
    conditional = run.condition is not None
    images: dict[str, Path] = {}
    if sampler and shape and run.condition == "label":
        classes = est.classes_
        drawn = est.sample(8 * len(classes), condition=np.repeat(classes, 8))
        images["class-conditional samples"] = plots.image_grid(
            drawn, shape, folder / "samples.png", ncols=8
        )
    elif sampler and shape:
        condition = None if conditions is None else conditions[:64]
        drawn = est.sample(64 if condition is None else len(condition), condition=condition)
        images["samples"] = plots.image_grid(drawn, shape, folder / "samples.png")
    if sampler and not shape:
        if est.needs_labels and conditions is not None:  # a class for every row to draw for
            conditions = _known_or_predicted(est, X, conditions)
        images["samples against data"] = plots.tabular_samples(
            X, est.sample(len(X), condition=conditions), folder / "samples.png"
        )
    if shape:
        originals = X[:16]
        given = None if conditions is None else conditions[:16]
        images["reconstructions"] = plots.reconstruction_pairs(
            originals, est.reconstruct(originals, given), shape, folder / "reconstructions.png"
        )
    what = "posterior means" if est.density_model else "codes"
    images["latent space"] = plots.latent_scatter(
        est.transform(X, conditions), folder / "latent.png", labels=y, what=what
    )
    if conditional or not est.decodes_codes:
        images["training curves"] = draw_curves(run)
        return images
    if sampler and shape and est.n_components == 2:
        grid = plots.standard_normal_grid(15)
        images["manifold"] = plots.manifold_grid(
            est.inverse_transform(grid), shape, folder / "manifold.png"
        )
    if shape and len(X) >= 2:
        images["interpolations"] = plots.interpolation_strips(
            interpolate(est, X[:8:2], X[1:8:2], 10), shape, folder / "interpolation.png"
        )
    if sampler and shape:
        n_dims = min(est.n_components, 8)
        images["latent traversals"] = plots.traversal_grid(
            traverse(est, n_dims, 9), shape, folder / "traversal.png", n_dims=n_dims, n_steps=9
        )
    pseudo = getattr(est, "pseudo_inputs_", None)
    if shape and pseudo is not None:
        images["pseudo-inputs"] = plots.image_grid(
            pseudo[:PSEUDO_INPUTS_SHOWN], shape, folder / "pseudo_inputs.png"
        )
    images["training curves"] = draw_curves(run)
    return images


def interpolate(
    est: LatentEstimator, X_from: np.ndarray, X_to: np.ndarray, steps: int
) -> np.ndarray:
    """Decoded straight lines between the codes of paired rows: (pairs, steps, n_features)."""
    z_from, z_to = est.transform(X_from), est.transform(X_to)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    path = (1 - t) * z_from[:, None, :] + t * z_to[:, None, :]
    decoded = est.inverse_transform(path.reshape(-1, est.n_components))
    return decoded.reshape(len(X_from), steps, -1)


def traverse(est: LatentEstimator, n_dims: int, steps: int, span: float = 2.5) -> np.ndarray:
    """Decode z = 0 with one unit at a time swept over [-span, span]: (n_dims * steps, D)."""
    values = np.linspace(-span, span, steps)
    Z = np.zeros((n_dims, steps, est.n_components))
    for d in range(n_dims):
        Z[d, :, d] = values
    return est.inverse_transform(Z.reshape(-1, est.n_components))


def _known_or_predicted(est, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The rows' labels where known, and the classifier's guess where -1 marks them unknown."""
    known, labelled = partial_labels(labels, len(X), require_one=False)
    if labelled.all():
        return labels
    classes = est.predict(X)
    classes[labelled] = known
    return classes
