"""Waiting for native threads to go quiet before the interpreter finalizes.

gloo's worker threads (``pt_gloo_runloop``) let go of a finished collective's tensors a moment
after the collective has returned to Python. Letting go of a tensor Python has seen takes the
GIL, and a thread that asks for the GIL once the interpreter has begun to finalize is ended in
the middle of a C++ destructor, which aborts the whole process ("terminate called without an
active exception", pytorch/pytorch#179291). On a busy machine that moment can come after the
main thread's last line. Destroying the process group does not join those threads, since
DistributedDataParallel keeps the group alive to the end; so the process waits, at exit, until
they are idle. Linux shows each thread's state and its count of context switches under
``/proc/self/task``: a thread is idle when it sleeps and has not woken for several polls.
"""

from __future__ import annotations

import time
from pathlib import Path

TASKS = Path("/proc/self/task")


def thread_activity(prefix: str) -> dict[str, tuple[str, int]]:
    """This process's threads whose name starts with ``prefix``.

    Parameters
    ----------
    prefix : str
        The start of the threads' names (Linux keeps 15 characters of a name).

    Returns
    -------
    dict
        For each thread id, its state letter (``"S"`` sleeping, ``"R"`` running or runnable,
        ...) and the number of times it has been switched out so far. Empty where ``/proc``
        is absent.
    """
    activity = {}
    if not TASKS.is_dir():
        return activity
    for task in TASKS.iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread has ended
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("Name", "").startswith(prefix):
            switches = int(fields["voluntary_ctxt_switches"]) + int(
                fields["nonvoluntary_ctxt_switches"]
            )
            activity[task.name] = (fields["State"][0], switches)
    return activity


def wait_until_idle(
    prefix: str, timeout: float = 5.0, interval: float = 0.002, quiet_polls: int = 3
) -> bool:
    """Wait until every thread named ``prefix...`` sleeps and stays asleep, at most ``timeout``.

    The caller sleeps between polls, so a thread waiting for the GIL gets it.

    Parameters
    ----------
    prefix : str
        The start of the threads' names.
    timeout : float
        The longest wait, in seconds.
    interval : float
        The time between two looks, in seconds.
    quiet_polls : int
        How many looks in a row must find every such thread asleep, and not woken since the
        look before.

    Returns
    -------
    bool
        True once the threads are idle (at once when there are none); False when ``timeout``
        passed first, or where ``/proc`` cannot tell (then after one ``interval``).
    """
    if not TASKS.is_dir():
        time.sleep(interval)
        return False
    deadline = time.monotonic() + timeout
    before, quiet = thread_activity(prefix), 0
    if not before:
        return True
    while quiet < quiet_polls:
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
        now = thread_activity(prefix)
        asleep = all(state == "S" for state, _ in now.values())
        quiet = quiet + 1 if asleep and now == before else 0
        before = now
    return True
