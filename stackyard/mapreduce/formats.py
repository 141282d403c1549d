"""Input and output formats: how a job's input becomes splits and records,
and how its records become files in the output directory. Splits, and the
lines a split owns, are the engine's (compute/splits.py): a split per DFS
chunk, a line belonging to the split it starts in."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from stackyard.compute.records import write_batches
from stackyard.compute.shuffle import counted
from stackyard.compute.splits import (
    READ_BUFFER,
    Split,
    file_records,
    first_owned_line,
    input_files,
    owned_lines,
    text_lines,
)


class InputFormat(ABC):
    """Splits and reads; subclasses say how a split becomes records."""
    splittable = True

    def splits(self, fs, paths) -> list[Split]:
        out = []
        for f in input_files(fs, paths):
            if not f["length"] or not self.splittable:
                locs = fs.chunk_locations(f["path"], 0, 1) if f["length"] else []
                out.append(Split(f["path"], 0, f["length"], tuple(locs[0].hosts) if locs else ()))
                continue
            for c in fs.chunk_locations(f["path"]):
                out.append(Split(f["path"], c.offset, c.length, tuple(c.hosts)))
        return out

    def plan(self, client, inputs) -> list:
        """The job's splits, on the driver; formats over something other than
        DFS files (the table store) take what they need from CLIENT."""
        return self.splits(client.fs, inputs)

    @abstractmethod
    def read(self, fs, split: Split, counters: dict) -> Iterator[tuple]:
        """The records of SPLIT; adds what it read to counters["bytes_read"]."""

    def read_task(self, ctx, split) -> Iterator[tuple]:
        """The records of SPLIT in the task CTX (a format needing more than the
        DFS overrides this)."""
        return self.read(ctx.fs, split, ctx.counters)


class TextInput(InputFormat):
    """(byte offset, line) per line, without the line ending; UTF-8."""

    def read(self, fs, split: Split, counters: dict) -> Iterator[tuple]:
        return text_lines(fs, split, counters)


class KeyValueInput(InputFormat):
    """(key, value) from `key<TAB>value` lines (Hadoop's KeyValueTextInputFormat);
    a line without a tab is (line, "")."""

    def read(self, fs, split: Split, counters: dict) -> Iterator[tuple]:
        for _pos, raw in owned_lines(fs, split, counters):
            key, _, value = raw.rstrip(b"\r\n").decode("utf-8", "replace").partition("\t")
            yield key, value


class TextBlockInput(InputFormat):
    """(offset, bytes) blocks of whole lines, about `block` bytes each, owning
    the same lines TextInput would: for jobs that work on many lines per
    Python call (`block.split()`), at the speed of the bytes methods."""

    def __init__(self, block: int = 256 << 10):
        # small blocks: bytes.split's list of a 256 KiB block stays in the CPU
        # caches; a Counter fed 256 KiB blocks ran 10% faster than 8 MiB ones
        self.block = block

    def read(self, fs, split: Split, counters: dict) -> Iterator[tuple]:
        end = split.offset + split.length
        with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
            pos = start = first_owned_line(f, split)
            while pos <= end:
                data = f.read(self.block)
                if not data:
                    break
                if not data.endswith(b"\n"):
                    data += f.readline()
                last = pos + len(data) > end
                if last:       # ours are the lines that start at or before END
                    data = data[:data.find(b"\n", end - pos) + 1] or data
                yield pos, data
                pos += len(data)
                if last:
                    break
            counters["bytes_read"] = counters.get("bytes_read", 0) + (pos - start)


class FixedRecordInput(InputFormat):
    """Fixed-size binary records, handed out in blocks: (offset of the block's
    first record, bytes of up to `batch` whole records). A split owns the
    records that start inside it, as lines belong to the split they start in,
    so records may cross chunk boundaries. Jobs work on a block at once
    (numpy), not one Python call per record."""

    def __init__(self, record_size: int, batch: int = 40_000):
        if record_size < 1 or batch < 1:
            raise ValueError("record_size and batch: must be positive")
        self.record_size, self.batch = record_size, batch

    def read(self, fs, split: Split, counters: dict) -> Iterator[tuple]:
        rs = self.record_size
        first = -(-split.offset // rs) * rs
        end = -(-(split.offset + split.length) // rs) * rs
        with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
            end = min(end, f.raw.length // rs * rs)
            f.seek(first)
            pos = first
            while pos < end:
                want = min(self.batch * rs, end - pos)
                block = f.read(want)
                if len(block) != want:
                    raise EOFError(f"{split.path}: short read at {pos}")
                yield pos, block
                pos += want
        counters["bytes_read"] = counters.get("bytes_read", 0) + max(0, end - first)


class PickleInput(InputFormat):
    """The records of files written by PickleOutput (whole files: not split)."""
    splittable = False

    def read(self, fs, split: Split, counters: dict) -> Iterator[tuple]:
        return file_records(fs, split, counters)


class OutputFormat(ABC):
    to_files = True        # part files under the output directory, committed

    @abstractmethod
    def write(self, f, records: Iterable[tuple], counters: dict) -> None:
        """RECORDS into the open DFS file F; counts counters["output_records"]."""

    def prepare(self, client, output: str) -> None:  # noqa: B027 (most formats need none)
        """On the driver, before the job (an output that is not files checks
        its target here)."""

    def write_task(self, ctx, records: Iterable[tuple]) -> None:
        """RECORDS of the task CTX, for an output that is not files (to_files
        False); a file output is published through write() instead."""
        raise TypeError(f"{type(self).__name__} writes part files: it has no write_task")


class TextOutput(OutputFormat):
    """`key<TAB>value` lines (Hadoop's TextOutputFormat); a None key or value
    is left out with its tab."""

    def write(self, f, records: Iterable[tuple], counters: dict) -> None:
        out = io.TextIOWrapper(f, encoding="utf-8", newline="\n", write_through=False)
        for key, value in counted(records, counters, "output_records"):
            if value is None:
                out.write(f"{key}\n")
            elif key is None:
                out.write(f"{value}\n")
            else:
                out.write(f"{key}\t{value}\n")
        out.flush()
        out.detach()


class PickleOutput(OutputFormat):
    """Framed pickled (key, value) records: what PickleInput reads back, any
    Python values intact (for chaining jobs)."""

    def write(self, f, records: Iterable[tuple], counters: dict) -> None:
        write_batches(f, counted(records, counters, "output_records"))


class RawOutput(OutputFormat):
    """Each record's value written as it is (bytes): for binary outputs such
    as TeraSort's sorted records."""

    def write(self, f, records: Iterable[tuple], counters: dict) -> None:
        for _key, value in counted(records, counters, "output_records"):
            f.write(value)


def pickle_records(records) -> bytes:
    """PickleOutput's bytes for RECORDS, for tests and small inputs."""
    buf = io.BytesIO()
    write_batches(buf, records)
    return buf.getvalue()


__all__ = ["Split", "InputFormat", "TextInput", "TextBlockInput", "KeyValueInput",
           "FixedRecordInput",
           "PickleInput", "OutputFormat", "TextOutput", "PickleOutput", "RawOutput",
           "input_files", "pickle_records"]
