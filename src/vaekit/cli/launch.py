"""``vaekit train --nproc N``: torchrun started for the user, N processes on this machine.

The processes run this same command line under torchrun's environment (``--nproc`` then names
the processes already there). torchrun's own logging is kept quiet: a process that fails has
printed its one-line error, and the job ends with its exit status; a process killed by a signal
is named, with how to go on; Ctrl-C (or SIGTERM) stops them all, and they say how to resume.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import uuid

from ..exceptions import TrainingError

#: Exit status of a ``vaekit`` command that failed with a reported error.
REPORTED = 2


def launch(nproc: int, argv: list[str]) -> None:
    """Run ``vaekit ARGV`` in ``nproc`` processes under torchrun on this machine.

    Parameters
    ----------
    nproc : int
        Processes to start; each gets ``cpu_count // nproc`` threads unless
        ``OMP_NUM_THREADS`` says otherwise, and under CUDA the GPU of its local rank.
    argv : list of str
        The command line after ``vaekit``.

    Raises
    ------
    SystemExit
        With the failed process's status when it printed its own error.
    TrainingError
        When a process was killed by a signal or crashed.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # torchrun's --standalone: a free port on loopback
        max_restarts=0,
    )
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        elastic_launch(config, sys.executable)("-m", "vaekit", *argv)
    except SignalException as err:  # Ctrl-C or a scheduler's SIGTERM: the processes said so
        raise SystemExit(128 + err.sigval) from None
    except ChildFailedError as err:
        rank, failure = _cause(err.failures)
        if failure.exitcode == REPORTED:
            raise SystemExit(REPORTED) from None
        if failure.exitcode < 0:
            how = f"was killed by {signal.Signals(-failure.exitcode).name}"
        else:
            how = f"failed with exit status {failure.exitcode}"
        raise TrainingError(
            f"Process {rank} of {nproc} {how}; the last checkpoint is kept, and the same "
            "command run again goes on from it."
        ) from None


def _cause(failures: dict) -> tuple:
    """The failure that stopped the job: a process killed by a signal (other than the SIGTERM
    torchrun sends the survivors), else one that reported its error, else the first."""
    ranked = sorted(failures.items())
    for rank, failure in ranked:
        if failure.exitcode < 0 and failure.exitcode != -signal.SIGTERM:
            return rank, failure
    for rank, failure in ranked:
        if failure.exitcode == REPORTED:
            return rank, failure
    return ranked[0]
