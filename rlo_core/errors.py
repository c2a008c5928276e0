"""User-facing errors.

An `RloError` carries one paragraph that names the offending value and the fix. The
command-line interface prints it without a traceback and exits with `exit_code`.
"""


class RloError(Exception):
    """An error caused by user input or the environment, with a message that names the value and the fix."""

    exit_code = 2


class ConfigError(RloError):
    """An invalid option, profile or configuration value."""


class DataError(RloError):
    """A data set that is missing, incomplete or laid out differently than expected."""


class ModelError(RloError):
    """An unknown network name, missing weights or an incompatible model."""


class CheckpointError(RloError):
    """A checkpoint that is missing, corrupt or from an incompatible run."""


class NonFiniteLossError(RloError):
    """Training produced a NaN or infinite loss."""

    exit_code = 3


class TrainingInterrupted(RloError):
    """The user interrupted a run (SIGINT) after a resumable checkpoint was written."""

    exit_code = 130
