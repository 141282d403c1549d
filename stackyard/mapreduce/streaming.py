"""Hadoop Streaming: any command as mapper, combiner or reducer.

The contract is Hadoop's: the mapper gets its split's lines on stdin and
prints `key<TAB>value` lines (a line without a tab is a key with an empty
value); the reducer gets `key<TAB>value` lines sorted by key, every line of
one key together, and what it prints is the output as it is. The combiner,
like the reducer, sees one spill's sorted lines. Commands run through the
shell in the task's directory, where the `-file` files are (executable),
and that directory and the worker's Python come first on PATH, so
`-mapper mapper.py` and `-mapper "python3 mapper.py"` both work. A command
that exits non-zero fails the attempt with its stderr's tail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from stackyard.mapreduce.job import Job


def split_line(line: str) -> tuple[str, str]:
    key, _, value = line.partition("\t")
    return key, value


class StreamingJob(Job):
    mapper_cmd: str = "cat"
    reducer_cmd: str | None = None      # None or "NONE": records go out as they come
    combiner_cmd: str | None = None
    files: dict = {}                    # name -> bytes, written beside the commands

    def setup(self, ctx) -> None:
        super().setup(ctx)
        for name, data in self.files.items():
            path = Path(ctx.dir) / os.path.basename(name)
            path.write_bytes(data)
            path.chmod(0o755)

    def has_combiner(self) -> bool:
        return bool(self.combiner_cmd)

    def map_records(self, records: Iterator[tuple]) -> Iterator[tuple]:
        lines = (value for _offset, value in records)
        return (split_line(out) for out in self.pipe(self.mapper_cmd, lines, "mapper"))

    def combine_sorted(self, records: Iterator[tuple]) -> Iterator[tuple]:
        lines = (f"{k}\t{v}" for k, v in records)
        return (split_line(out) for out in self.pipe(self.combiner_cmd, lines, "combiner"))

    def reduce_sorted(self, records: Iterator[tuple], counters: dict) -> Iterator[tuple]:
        groups = [0]

        def grouped():                  # counts the keys as the records go by
            last = object()
            for k, v in records:
                if k != last:
                    groups[0] += 1
                    last = k
                yield k, v
        try:
            if not self.reducer_cmd or self.reducer_cmd == "NONE":
                yield from grouped()    # the identity reducer: records go out as they came
                return
            lines = (f"{k}\t{v}" for k, v in grouped())
            for out in self.pipe(self.reducer_cmd, lines, "reducer"):
                key, tab, value = out.partition("\t")
                yield (key, value) if tab else (out, None)
        finally:
            counters["reduce_input_groups"] = counters.get("reduce_input_groups", 0) + groups[0]

    def pipe(self, cmd: str, lines: Iterable[str], role: str) -> Iterator[str]:
        """Feed LINES to CMD's stdin from a thread; yield its stdout lines."""
        ctx = self.ctx
        workdir = str(ctx.dir)
        env = {**os.environ,
               "PATH": os.pathsep.join([workdir, os.path.dirname(sys.executable),
                                        os.environ.get("PATH", "")]),
               "mapreduce_task_attempt_id": ctx.attempt,
               "mapreduce_task_partition": str(ctx.task),
               "mapreduce_job_id": ctx.job}
        errpath = Path(workdir) / f"{role}.stderr"
        with open(errpath, "wb") as err:
            proc = subprocess.Popen(cmd, shell=True, cwd=workdir, env=env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, bufsize=1 << 20)
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                for line in lines:
                    proc.stdin.write(line.encode("utf-8", "surrogateescape") + b"\n")
            except BrokenPipeError:
                pass                        # the command stopped reading: its exit code tells
            except BaseException as exc:    # our side (reading the input) failed
                failure.append(exc)
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass

        feeder = threading.Thread(target=feed, daemon=True, name=f"streaming-{role}")
        feeder.start()
        try:
            for raw in proc.stdout:
                yield raw.decode("utf-8", "surrogateescape").rstrip("\n")
        finally:
            feeder.join()
            code = proc.wait()
        if failure:
            raise failure[0]
        if code != 0:
            tail = errpath.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"streaming {role} `{cmd}` failed with exit code {code}"
                               + (f"; its stderr ends:\n{tail}" if tail else ""))
