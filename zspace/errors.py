"""One exception base for zspace, with a subclass per kind of failure.

The CLI maps each subclass to an exit code, so a user (or a script) can tell bad input
(exit 2) from a failing build step (exit 3), a build folder in use (exit 4) and a
machine that lacks a tool (exit 5).
"""


class ZspaceError(Exception):
    """Base of every error zspace raises on purpose."""

    exit_code = 1


class ConfigError(ZspaceError):
    """A configuration key is unknown, mistyped or out of range."""

    exit_code = 2


class DataError(ZspaceError):
    """A data source is missing, empty or not laid out as expected."""

    exit_code = 2


class ModelError(ZspaceError):
    """A model artifact is missing, corrupt or does not match its configuration."""

    exit_code = 2


class BuildError(ZspaceError):
    """A build step (a notebook, the report) failed."""

    exit_code = 3


class TrainingError(BuildError):
    """A model's training went wrong (its loss became non-finite or exploded)."""


class BuildBusy(ZspaceError):
    """Another process is building in the same build folder (it holds the lock)."""

    exit_code = 4


class EnvironmentProblem(ZspaceError):
    """The machine lacks a tool the chosen setting needs (say, a C++ compiler)."""

    exit_code = 5


class ForeignFolder(ZspaceError):
    """A folder zspace would delete or replace is not one it made (``clean`` given a
    folder that is not a build folder, ``models/<profile>/`` holding other files)."""

    exit_code = 2
