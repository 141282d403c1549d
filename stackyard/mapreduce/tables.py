"""MapReduce over the table store (HBase's TableInputFormat and
TableOutputFormat):

    class Totals(Job):
        input_format = TableInput(columns=[b"cf:amount"])
        output_format = TableOutput(families=["sum"])

        def mapper(self, row, cells):
            yield row[:4], int(cells[b"cf:amount"])

        def reducer(self, day, amounts):
            yield day, {b"sum:total": sum(amounts)}

    Totals(reducers=2).run("sales", "daily")     # table in, table out

The input names a table (not a path): a split per tablet, placed beside the
chunkserver next to the tablet's server; records are (row key, {b"cf:q":
value}). Output records are (row key, {column: value}), put in batches;
there is no output directory, and a task's retry writes the same cells at
the job's one timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from stackyard.mapreduce.formats import InputFormat, OutputFormat
from stackyard.table.model import LATEST


class TableInput(InputFormat):
    def __init__(self, columns=None, filter: str | None = None,  # noqa: A002
                 start: bytes = b"", stop: bytes = b"", versions: int = 1,
                 min_ts: int = 0, max_ts: int = LATEST, batch: int = 1000):
        self.columns, self.filter = columns, filter
        self.start, self.stop = bytes(start), bytes(stop)
        self.versions, self.min_ts, self.max_ts, self.batch = versions, min_ts, max_ts, batch

    def plan(self, client, inputs) -> list:
        from stackyard.table import filters
        from stackyard.table.jobs import table_splits
        if not isinstance(inputs, str):
            raise ValueError("TableInput: the job's input is one table's name")
        if self.filter:
            filters.parse(self.filter)       # named on the driver, not in every task
        return table_splits(client.tables, inputs, self.start, self.stop)

    def splits(self, fs, paths) -> list:
        raise TypeError("TableInput reads a table: run the job through Job.run")

    def read(self, fs, split, counters: dict) -> Iterator[tuple]:
        raise TypeError("TableInput reads in a task (read_task)")

    def read_task(self, ctx, split) -> Iterator[tuple]:
        from stackyard.table.jobs import read_split
        return read_split(ctx, split, self.columns, self.filter, self.versions, self.min_ts,
                          self.max_ts, self.batch)


class TableOutput(OutputFormat):
    """Puts into the table the job's output argument names. FAMILIES, if
    given, are checked to exist before the job starts."""
    to_files = False

    def __init__(self, families: Iterable[str] = (), batch: int = 1000):
        self.families, self.batch = tuple(families), batch
        self.table = ""
        self.coords: tuple[str, ...] = ()
        self.timestamp = 0

    def prepare(self, client, output: str) -> None:
        from stackyard.table.jobs import check_table, coords_of, job_timestamp
        check_table(client.tables, output, self.families)
        self.table, self.coords = output, coords_of(client.tables)
        self.timestamp = job_timestamp()

    def write(self, f, records, counters: dict) -> None:
        raise TypeError("TableOutput writes to a table, not a file")

    def write_task(self, ctx, records: Iterable[tuple]) -> None:
        from stackyard.table.jobs import write_rows
        write_rows(ctx, self.coords, self.table, records, self.timestamp, self.batch)


__all__ = ["TableInput", "TableOutput"]
