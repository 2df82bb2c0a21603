"""Commands that tests stop with Ctrl-C start with SIGINT's default action.

A shell that runs a command in the background (``make test &``, nohup, some CI runners) starts
it with SIGINT ignored, the ignored signal is inherited across exec, and Python then never
installs the handler that turns SIGINT into KeyboardInterrupt: the test's Ctrl-C would be lost.
"""

import signal


def restore_ctrl_c() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: SIGINT back to its default action."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
