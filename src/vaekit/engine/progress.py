"""Progress of training: a bar on a terminal; a plain line now and then when the output is piped.

A bar redrawn with carriage returns is unreadable in a log file or a CI page, so when standard
error is not a terminal training prints one line after the first epoch, one every
``LINE_SECONDS`` and one at the end. Shorter work (importance sampling, decoding images) shows a
bar on a terminal and nothing otherwise (``tqdm(disable=None)``).
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from tqdm.auto import tqdm

#: Seconds between two progress lines when the output is not a terminal.
LINE_SECONDS = 10.0


def on_terminal(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (standard error by default) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


class EpochProgress:
    """Training progress by epoch: a tqdm bar on a terminal, else plain lines.

    Parameters
    ----------
    initial : int
        Epochs already done (a resumed fit).
    total : int or None
        The epoch limit, None for a time budget alone.
    enabled : bool
        False shows nothing at all.
    stream : file-like, optional
        Where to write; standard error by default.
    """

    def __init__(
        self, initial: int, total: int | None, enabled: bool, stream: TextIO | None = None
    ):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.enabled = total, enabled
        self.bar = None
        if enabled and on_terminal(self.stream):
            self.bar = tqdm(
                desc="training", unit="epoch", initial=initial, total=total, file=self.stream
            )
        self.last_line = -math.inf  # when the last plain line was printed
        self.record: dict | None = None
        self.printed: dict | None = None  # the record it showed

    def update(self, record: dict) -> None:
        """One epoch done; ``record`` is its history record (epoch, loss, maybe val_loss)."""
        self.record = record
        if self.bar is not None:
            self.bar.update()
            self.bar.set_postfix(
                loss=f"{record['loss']:.3f}", val=f"{record.get('val_loss', math.nan):.3f}"
            )
        elif self.enabled and time.monotonic() - self.last_line >= LINE_SECONDS:
            self._line()

    def close(self) -> None:
        """End the bar at the epochs run (not at the limit), or print the last line."""
        if self.bar is not None:
            self.bar.total = self.bar.n
            self.bar.refresh()
            self.bar.close()
        elif self.enabled and self.record is not self.printed:
            self._line()

    def _line(self) -> None:
        record = self.record
        limit = "" if self.total is None else f"/{self.total}"
        text = f"training: epoch {record['epoch']}{limit}, loss {record['loss']:.4g}"
        if "val_loss" in record:
            text += f", validation loss {record['val_loss']:.4g}"
        print(text, file=self.stream, flush=True)
        self.last_line, self.printed = time.monotonic(), record
