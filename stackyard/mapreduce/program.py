"""What a MapReduce job's tasks run: the two-stage program the driver pickles
into the job's payload. Stage 0 maps one split each; stage 1 reduces one
partition each (absent in a map-only job).

Output is committed as Hadoop's FileOutputCommitter does: a task writes
under OUTPUT/_temporary/ATTEMPT/, asks the scheduler for permission (one
attempt per task gets it), then renames its file into OUTPUT. A reader never
sees a half-written part file, and a speculative pair never both publish.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackyard.compute.context import TaskContext
from stackyard.compute.shuffle import counted
from stackyard.mapreduce.job import Job


@dataclass
class MapReduceProgram:
    job: object                    # the user's Job instance
    splits: list
    output: str
    reducers: int

    def prefetch(self, ctx: TaskContext) -> None:
        if ctx.stage == 1:
            ctx.prefetch({(ctx.job, 0): set(ctx.tasks)})

    def run_task(self, ctx: TaskContext) -> None:
        self.job.setup(ctx)
        if ctx.stage == 0:
            self.run_map(ctx)
        else:
            self.run_reduce(ctx)

    def run_map(self, ctx: TaskContext) -> None:
        job, c = self.job, ctx.counters
        split = ctx.split = self.splits[ctx.task]     # Hadoop's context.getInputSplit()
        c["map_input_bytes"] = c.get("map_input_bytes", 0) + split.length
        records = counted(job.input_format.read_task(ctx, split), c, "map_input_records")
        if not self.reducers:
            pairs = counted(job.map_records(records), c, "map_output_records")
            self._publish(ctx, f"part-m-{ctx.task:05d}", pairs)
            return
        combiner = job.combine_sorted if job.has_combiner() else None
        default = getattr(type(job).partitioner, "__func__", type(job).partitioner) is \
            Job.partitioner
        buf = ctx.map_output(None if default else job.partitioner, combiner, job.sort_buffer)
        n = buf.extend(job.map_records(records))
        c["map_output_records"] = c.get("map_output_records", 0) + n

    def run_reduce(self, ctx: TaskContext) -> None:
        c = ctx.counters
        records = counted(ctx.shuffle_input(ctx.task), c, "reduce_input_records")
        out = counted(self.job.reduce_sorted(records, c), c, "reduce_output_records")
        self._publish(ctx, f"part-r-{ctx.task:05d}", out)

    def _publish(self, ctx: TaskContext, name: str, records) -> None:
        if not self.job.output_format.to_files:
            self.job.output_format.write_task(ctx, records)
            return

        def write(f) -> None:
            self.job.output_format.write(f, records, ctx.counters)

        ctx.publish(self.output, name, write, self.job.output_replication)
