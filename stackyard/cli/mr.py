"""`yard mr run | streaming | list | status | kill`: MapReduce jobs from the shell."""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import time
import traceback
from pathlib import Path

import click

from stackyard.cli.common import exit_with, guarded


@click.group("mr")
def mr() -> None:
    """Run and watch MapReduce jobs on the cluster's job engine."""


@mr.command("run")
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--input", "inputs", multiple=True, required=True, help="DFS input path (repeatable).")
@click.option("--output", required=True, help="DFS output directory (must not exist).")
@click.option("--reducers", type=int, default=None, help="Number of reduce tasks.")
@click.option("--job", "job_name", default=None, help="Which Job class, if the file has several.")
@click.option("--overwrite", is_flag=True, help="Remove an existing OUTPUT first.")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def run_cmd(job_file, inputs, output, reducers, job_name, overwrite, home) -> None:
    """Run the Job subclass defined in JOB_FILE over INPUT into OUTPUT."""
    def go() -> int:
        cls = load_job_class(job_file, job_name)
        options = {} if reducers is None else {"reducers": reducers}
        return run_job(cls(**options), list(inputs), output, home, overwrite)
    exit_with(guarded("mr run", go))


@mr.command("streaming", context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def streaming_cmd(args, home) -> None:
    """Hadoop Streaming: -mapper CMD -reducer CMD [-combiner CMD] [-file F]...
    -input PATH... -output PATH [-numReduceTasks N]."""
    def go() -> int:
        from stackyard.mapreduce import StreamingJob
        a = streaming_args(list(args))
        files = {}
        for f in a.file:
            p = Path(f)
            if not p.is_file():
                raise FileNotFoundError(2, "-file: no such local file", f)
            files[p.name] = p.read_bytes()
        reducer = a.reducer if a.reducer and a.reducer != "NONE" else None
        job = StreamingJob(mapper_cmd=a.mapper, reducer_cmd=reducer, combiner_cmd=a.combiner,
                           files=files, reducers=a.numReduceTasks if a.numReduceTasks is not None
                           else 1, name=f"streaming {a.mapper} | {reducer or 'identity'}")
        return run_job(job, a.input, a.output, home)
    exit_with(guarded("mr streaming", go))


def streaming_args(args: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="yard mr streaming", add_help=False)
    p.add_argument("-mapper", required=True)
    p.add_argument("-reducer")
    p.add_argument("-combiner")
    p.add_argument("-file", action="append", default=[])
    p.add_argument("-input", action="append", required=True)
    p.add_argument("-output", required=True)
    p.add_argument("-numReduceTasks", type=int)
    try:
        ns, rest = p.parse_known_args(args)
    except SystemExit:
        raise ValueError("usage: yard mr streaming -mapper CMD [-reducer CMD] [-combiner CMD] "
                         "[-file F]... -input PATH... -output PATH [-numReduceTasks N]") from None
    if rest:
        raise ValueError(f"unknown streaming option(s): {' '.join(rest)}")
    if ns.numReduceTasks is not None and ns.numReduceTasks < 0:
        raise ValueError(f"-numReduceTasks: must be 0 or more, got {ns.numReduceTasks}")
    return ns


def load_job_class(path: str, name: str | None):
    from stackyard.mapreduce import Job, StreamingJob
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(2, "no such job file", path)
    module_name = f"yard_job_{p.stem}"
    # read as Python whatever its name ends with, so a README gets "not valid Python"
    loader = importlib.machinery.SourceFileLoader(module_name, str(p))
    spec = importlib.util.spec_from_file_location(module_name, p, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(p.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:        # also a file that is not Python at all
        where = f", line {exc.lineno}" if exc.lineno else ""
        raise ValueError(f"{path}{where}: not valid Python: {exc.msg}") from None
    except ValueError as exc:         # Python 3.11: "source code cannot contain null bytes"
        raise ValueError(f"{path}: not valid Python: {exc}") from None
    except Exception as exc:          # the job file itself failed as it was imported
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if os.path.abspath(f.filename) == str(p.resolve())]
        where = f", line {frames[-1].lineno}" if frames else ""
        raise ValueError(f"{path}{where}: {type(exc).__name__}: {exc}") from None
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, Job) and c not in (Job, StreamingJob)
               and c.__module__ == module_name]
    if name is not None:
        classes = [c for c in classes if c.__name__ == name]
    if len(classes) != 1:
        found = ", ".join(c.__name__ for c in classes) or "none"
        raise ValueError(f"{path}: expected one Job subclass (found {found}); "
                         "pick one with --job NAME" if classes else
                         f"{path}: defines no subclass of stackyard.mapreduce.Job")
    return classes[0]


def run_job(job, inputs, output, home, overwrite: bool = False) -> int:
    from stackyard.compute.client import JobFailed
    from stackyard.connect import connect
    client = connect(home=home, embedded=False)
    try:
        if overwrite and client.fs.exists(output):
            client.fs.rm(output, recursive=True)
            click.echo(f"Deleted {output}", err=True)
        show = JobProgress()
        try:
            result = job.run(inputs, output, client=client, progress=show)
        except JobFailed as exc:
            show.close()
            s = exc.summary
            click.echo(f"Job {s['id']} failed: {s['error']}", err=True)
            print_counters(s["counters"])
            return 1
        show.close()
        click.echo(f"Job {result.id} completed successfully in {result.seconds:.1f} s; "
                   f"output in {result.output}", err=True)
        print_counters(result.counters)
        return 0
    finally:
        client.close()


def print_counters(counters: dict, err: bool = True) -> None:
    """Hadoop's way: `Counters: N`, then `\tName=value` lines (on stderr
    beside a running job, on stdout for `yard mr status`)."""
    click.echo(f"Counters: {len(counters)}", err=err)
    for key in sorted(counters):
        click.echo(f"\t{key.replace('_', ' ').capitalize()}={counters[key]}", err=err)


class JobProgress:
    """Live bars per stage on a terminal; Hadoop-style `map 40% reduce 0%`
    lines when stderr is not one."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.bars = None
        self.last = ""

    def __call__(self, summary: dict) -> None:
        stages = summary["stages"]
        if self.tty:
            from rich.progress import BarColumn, Progress, TextColumn
            if self.bars is None:
                self.bars = Progress(TextColumn("{task.description:>8}"), BarColumn(),
                                     TextColumn("{task.percentage:>3.0f}%  {task.fields[tasks]}"),
                                     transient=False)
                self.ids = [self.bars.add_task(s["name"], total=1.0, tasks="") for s in stages]
                self.bars.start()
            for tid, s in zip(self.ids, stages, strict=True):
                self.bars.update(tid, completed=s["progress"],
                                 tasks=f"{s['succeeded']}/{s['tasks']} tasks, {s['running']} running")
            return
        line = " ".join(f"{s['name']} {round(100 * s['progress'])}%" for s in stages)
        if line != self.last:
            self.last = line
            click.echo(f"{time.strftime('%H:%M:%S')} {summary['id']}: {line}", err=True)

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None


@mr.command("list")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def list_cmd(home) -> None:
    """Jobs the scheduler knows, newest last."""
    def go() -> int:
        from stackyard.connect import connect
        with connect(home=home, embedded=False) as client:
            for j in client.engine.jobs():
                stages = " ".join(f"{s['name']} {round(100 * s['progress'])}%" for s in j["stages"])
                click.echo(f"{j['id']}\t{j['state']}\t{j['user']}\t{j['name']}\t{stages}")
        return 0
    exit_with(guarded("mr list", go))


@mr.command("status")
@click.argument("job_id")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def status_cmd(job_id, home) -> None:
    """One job's state, stages and counters."""
    def go() -> int:
        from stackyard.connect import connect
        with connect(home=home, embedded=False) as client:
            s = client.engine.status(job_id)
        click.echo(f"{s['id']} ({s['name']}): {s['state']}")
        for st in s["stages"]:
            click.echo(f"  {st['name']}: {st['succeeded']}/{st['tasks']} tasks done, "
                       f"{st['running']} running")
        if s["error"]:
            click.echo(s["error"])
        print_counters(s["counters"], err=False)
        return 0
    exit_with(guarded("mr status", go))


@mr.command("kill")
@click.argument("job_id")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def kill_cmd(job_id, home) -> None:
    """Stop a running job."""
    def go() -> int:
        from stackyard.connect import connect
        with connect(home=home, embedded=False) as client:
            client.engine.kill(job_id)
        click.echo(f"Killed {job_id}")
        return 0
    exit_with(guarded("mr kill", go))
