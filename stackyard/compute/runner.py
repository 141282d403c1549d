"""One task attempt, in its own process: `python -m stackyard.compute.runner DIR`.

Reads DIR/task.msgpack (written by the worker), unpickles the job's program
from the payload, runs `program.run_task(ctx)` for each task of the attempt
(one, or a group of a stage's quick tasks; `program.prefetch(ctx)` first, if
the program has it, so that a group's shuffle reads go out together) and
writes DIR/result.msgpack: {"state": "succeeded" | "failed", "counters",
"outputs" (bytes each task returns to the driver), "empty" and "size" (of a
map output), "error" (the user's traceback), "fetch_failed": [stage, task, attempt]
when a map output could not be fetched}.
"""

from __future__ import annotations

# What every task would pay for once in its own process, paid here once in the
# fork server instead (this module is preloaded there): the codec http.client
# encodes host names with, and the resolver's first lookup.
import encodings.idna  # noqa: E402,F401
import os
import signal
import socket  # noqa: E402
import sys
import threading
import time
import traceback
from pathlib import Path

import msgpack

socket.getaddrinfo("127.0.0.1", 80)


def die_with_parent() -> None:
    """A worker killed -9 cannot kill its tasks; they notice they were orphaned
    and take their process group (streaming commands too) down with them."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="orphan-watch").start()


def main(adir: str) -> int:
    die_with_parent()
    d = Path(adir)
    task = msgpack.unpackb((d / "task.msgpack").read_bytes())
    from stackyard.compute.context import CommitDenied, FetchFailed, TaskContext
    ctx = TaskContext(task, d)
    result: dict
    try:
        import cloudpickle
        with open(task["payload"], "rb") as f:
            program = cloudpickle.load(f)
        prefetch = getattr(program, "prefetch", None)
        if prefetch is not None:
            prefetch(ctx)
        outputs = []
        for index in ctx.tasks:
            ctx.begin(index)
            program.run_task(ctx)
            outputs.append(ctx.output)
        ctx.flush_blocks()
        result = {"state": "succeeded", "counters": ctx.counters, "outputs": outputs,
                  **ctx.finish_map_output()}
    except CommitDenied as exc:     # another attempt of the task commits: not a failure
        result = {"state": "failed", "killed": True, "error": str(exc), "counters": ctx.counters}
    except FetchFailed as exc:
        result = {"state": "failed", "error": str(exc), "fetch_failed": [exc.stage, exc.task, exc.attempt],
                  "counters": ctx.counters}
    except BaseException:  # the user's error, whatever it is, goes back to the driver
        result = {"state": "failed", "error": traceback.format_exc(), "counters": ctx.counters}
    finally:
        ctx.close()
    tmp = d / "result.msgpack.tmp"
    tmp.write_bytes(msgpack.packb(result, default=str))
    os.replace(tmp, d / "result.msgpack")
    return 0


def run_attempt(adir: str) -> None:
    """In the forked task process: a session of its own (so that a kill takes
    its subprocesses too), output to task.log, then the runner. It lives
    here, in a module the fork server preloads: a child unpickles its target
    by importing the target's module, which must cost nothing."""
    os.setsid()
    fd = os.open(os.path.join(adir, "task.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.chdir(adir)
    code = main(adir)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
