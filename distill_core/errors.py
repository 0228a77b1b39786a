"""Errors a user can cause. Each carries a message a person can act on."""

from __future__ import annotations


class DistillError(ValueError):
    """Base class: anything wrong with a config, a dataset, a checkpoint or a run."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field  # dotted config path ("kd.temperature") when one field is to blame


class ConfigError(DistillError):
    """A config value is missing, of the wrong type or out of range."""


class DatasetError(DistillError):
    """A dataset file cannot be read or does not match its column/label mapping."""


class CheckpointError(DistillError):
    """A teacher checkpoint directory is missing, unreadable or incompatible."""


class UnknownNameError(ConfigError):
    """A registry lookup (student, loss, ...) named something that is not registered."""


class TrainingError(DistillError):
    """Training cannot go on (e.g. a NaN loss); the message names the step and loss term."""


class RunCancelled(Exception):
    """The run's cancel callback asked it to stop. Not a user error, so not a DistillError."""


class StorageError(DistillError):
    """A run's files cannot be written: full disk, no permission or a read-only filesystem.

    Retrying on the same machine cannot help, so a worker fails the run at once; the message
    names the path, the free space there and what to do.
    """
