"""The driver's half of Hadoop's FileOutputCommitter (the task's half is
TaskContext.publish): the output directory must not exist yet and is made
before the job runs; when the job succeeds its _temporary is removed and
_SUCCESS written last, when it fails the whole directory is removed."""

from __future__ import annotations

import posixpath

from stackyard.dfs.client import dfs_path


def check_output(fs, output: str) -> str:
    """OUTPUT's normalized path; it must not exist (checked before any work,
    as Hadoop's checkOutputSpecs)."""
    output = dfs_path(output)
    if fs.exists(output):
        raise FileExistsError(17, "Output directory already exists", output)
    return output


def setup_output(fs, output: str) -> str:
    """check_output, then make the directory."""
    output = check_output(fs, output)
    fs.mkdir(output)
    return output


def finish_output(fs, output: str, succeeded: bool) -> None:
    """Commit or abort the job's output directory (which the job made): a
    failed job leaves nothing behind (Hadoop's committer removes the job's
    output on abort), so it can simply be run again."""
    try:
        fs.rm(posixpath.join(output, "_temporary") if succeeded else output, recursive=True)
    except FileNotFoundError:
        pass
    if succeeded:
        fs.open(posixpath.join(output, "_SUCCESS"), "wb").close()
