"""Schedules that advance with every step: by epochs, or by a budget of training time.

A ``Clock`` says how far training has gone (fractional epochs and seconds of training); a
``Budget`` turns it into progress in [0, 1]; the learning-rate factor and any annealed weight
(the KL warm-up) are functions of the clock, so they move a little at each step and come back
exactly from a checkpoint that stores the epoch and the seconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from numbers import Real

from ..exceptions import ConfigError

SECONDS_PER_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*$")


def parse_duration(value: float | str | None, name: str = "max_time") -> float | None:
    """Seconds from None, a positive number of seconds, or text such as '90s', '60m', '1.5h'.

    Raises
    ------
    ConfigError
        When ``value`` is none of these.
    """
    if value is None:
        return None
    seconds = None
    if isinstance(value, Real) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match[1]) * SECONDS_PER_UNIT[match[2] or "s"]
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(
            f"{name} must be a positive number of seconds or a duration such as '90s', '60m' "
            f"or '1.5h'; got {value!r}."
        )
    return seconds


@dataclass(frozen=True)
class Clock:
    """How far training has gone: ``epochs`` (fractional, per step) and ``seconds`` of training."""

    epochs: float
    seconds: float


@dataclass(frozen=True)
class Budget:
    """When training ends: after ``max_epochs`` epochs or ``max_time`` seconds, whichever first.

    Either may be None (not both); training stops at the end of the epoch that spends it.
    """

    max_epochs: int | None
    max_time: float | None = None

    def __post_init__(self):
        if self.max_epochs is None and self.max_time is None:
            raise ConfigError("Training needs a budget: max_epochs, max_time or both.")

    def progress(self, clock: Clock) -> float:
        """The spent fraction of the budget, in [0, 1]: the larger of the two fractions."""
        fractions = []
        if self.max_epochs is not None:
            fractions.append(clock.epochs / self.max_epochs)
        if self.max_time is not None:
            fractions.append(clock.seconds / self.max_time)
        return min(max(fractions), 1.0)

    def spent(self, clock: Clock) -> bool:
        """True once either limit is reached."""
        return self.progress(clock) >= 1.0


def constant(progress: float) -> float:
    """The learning rate as given, throughout."""
    return 1.0


def cosine(progress: float) -> float:
    """Half a cosine from 1 to 0 over the budget (Loshchilov & Hutter 2017, without restarts)."""
    return 0.5 * (1.0 + math.cos(math.pi * progress))


#: Learning-rate schedules: the factor on the base learning rate as a function of progress.
LEARNING_RATE_SCHEDULES = {"constant": constant, "cosine": cosine}


@dataclass(frozen=True)
class Warmup:
    """A weight that ramps linearly from 0 to ``target`` over ``length`` epochs or seconds."""

    target: float
    length: float
    unit: str = "epochs"  # or "seconds"

    def __call__(self, clock: Clock) -> float:
        elapsed = clock.epochs if self.unit == "epochs" else clock.seconds
        return self.target * min(1.0, elapsed / self.length)

    def done(self, clock: Clock) -> bool:
        """True once the weight has reached its target."""
        return (clock.epochs if self.unit == "epochs" else clock.seconds) >= self.length
