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


class VaekitWarning(UserWarning):
    """Base class of the warnings vaekit gives on purpose; the CLI prints them in one line."""


class PosteriorCollapseWarning(VaekitWarning):
    """A VAE ended training with no active latent unit: its codes carry no information."""


class LabelCollapseWarning(VaekitWarning):
    """A semi-supervised VAE ended training with its classifier close to uniform on the
    unlabelled rows: they taught it nothing."""


class DataShiftWarning(VaekitWarning):
    """Data given to a trained model lie far outside the range of the data it was trained on."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the message says how to go on from the checkpoint."""
