"""One exception base for zspace, with a subclass per kind of failure.

The CLI maps each subclass to an exit code, so a user (or a script) can tell bad input
(exit 2, a build folder the cluster's workers cannot see among it) from a failing
build step (exit 3), a build folder in use (exit 4), a machine that lacks a tool or
a Dask scheduler that does not answer (exit 5), an unexpected error (exit 6, a bug)
and a file system that refused a write (exit 7).
"""

import errno


class ZspaceError(Exception):
    """Base of every error zspace raises on purpose."""

    # Never 1: that is diff's "a figure changed".
    exit_code = 6


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


class SchedulerUnreachable(EnvironmentProblem):
    """The Dask scheduler of ``build.scheduler`` (or ``DASK_SCHEDULER_ADDRESS``) did
    not answer."""


class UnsharedFolder(ZspaceError):
    """A worker of the Dask cluster does not see the build folder the client sees:
    it is not on a file system that every worker mounts at the same path."""

    exit_code = 2


class ForeignFolder(ZspaceError):
    """A folder zspace would delete or replace is not one it made (``clean`` given a
    folder that is not a build folder, ``models/<profile>/`` holding other files)."""

    exit_code = 2


class FileSystemFailure(ZspaceError):
    """The file system refused a write: the disk is full, it is read-only, a part of
    the path is a file, a name is too long."""

    exit_code = 7


# The errors of a file system (not of zspace), in the words the message gives.
FILE_SYSTEM_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    # mkdir(parents=True) where a part of the path is a file
    errno.EEXIST: "a file is in the way of a folder of that name",
    errno.ENAMETOOLONG: "the name is too long for the file system",
    errno.EFBIG: "the file is too large for the file system",
}


def file_system_failure(error: OSError,
                        folder: object = None) -> FileSystemFailure | None:
    """``error`` as a :class:`FileSystemFailure` naming the path and the cause, or
    None where it is no file system failure (a missing file is a bug, say).

    Args:
        error: The error.
        folder: Named where the error names no file (a write that found the disk
            full): the folder the command was writing into, if known.
    """
    cause = FILE_SYSTEM_CAUSES.get(error.errno)
    if cause is None:
        return None
    where = " -> ".join(str(name) for name in (error.filename, error.filename2)
                        if name is not None) or folder
    return FileSystemFailure(f"{where or 'writing a file'}: {cause} "
                             f"({error.strerror or error})")
