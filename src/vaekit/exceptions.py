"""The errors vaekit raises: one small hierarchy, each message a sentence that says what to do."""


class VaekitError(Exception):
    """Base class of every error vaekit raises on purpose."""


class DataError(VaekitError, ValueError):
    """The data cannot be used as given (shape, values, format)."""


class ConfigError(VaekitError, ValueError):
    """A parameter or configuration value is invalid."""


class ModelFileError(VaekitError):
    """A saved model folder is missing, corrupt, or from an unknown version."""


class TrainingError(VaekitError, RuntimeError):
    """Training could not go on (for example, the loss stayed non-finite)."""


class PosteriorCollapseWarning(UserWarning):
    """A VAE ended training with no active latent unit: its codes carry no information."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the message says how to go on from the checkpoint."""
