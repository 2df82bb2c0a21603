"""Runs: an estimator trained on a dataset, in a folder with its model, metrics, pictures and
report, and what the commands do with one (``vaekit train``, ``evaluate``, ``sample``, ...).

``folder`` trains, resumes and opens run folders; ``run`` is the opened run the commands work
on; ``data`` holds the held-out splits and the parameters that suit the data; ``pictures`` and
``report`` draw the pictures and write report.html; ``explorer`` and ``explorer_server`` serve
the page of ``vaekit explore``; ``metric_text`` names every metric;
``reproduce`` spells the command that trains a run again; ``shift`` warns about data unlike
the run's.
"""

from .data import (
    DATA_BINARIZE,
    binarize_settings,
    check_likelihood_fits,
    check_scaling,
    data_defaults,
    held_out,
    in_memory,
    named_labels,
)
from .explorer_server import explore
from .folder import (
    CHECKPOINT_FOLDER,
    PARTIAL_SUFFIX,
    REQUEST_FILE,
    RUN_FILE,
    TRAINING_WARNINGS,
    is_finished,
    open_run,
    partial_folder,
    resume_run,
    train_run,
)
from .pictures import build_report, draw_pictures, interpolate, traverse
from .run import Run

__all__ = [
    "CHECKPOINT_FOLDER",
    "DATA_BINARIZE",
    "PARTIAL_SUFFIX",
    "REQUEST_FILE",
    "RUN_FILE",
    "TRAINING_WARNINGS",
    "Run",
    "binarize_settings",
    "build_report",
    "check_likelihood_fits",
    "check_scaling",
    "data_defaults",
    "draw_pictures",
    "explore",
    "held_out",
    "in_memory",
    "interpolate",
    "is_finished",
    "named_labels",
    "open_run",
    "partial_folder",
    "resume_run",
    "train_run",
    "traverse",
]
