"""Input and output formats: how a job's input becomes splits and records,
and how its records become files in the output directory.

Splits follow DFS chunks (Hadoop's FileInputFormat with the block size as
split size): each split names the chunkservers holding it, so the scheduler
can run its map task beside one. A line crossing a split boundary belongs
to the split where it starts: a split other than the first skips through
its first newline, and every split reads on past its end to finish its last
line (Hadoop's LineRecordReader).
"""

from __future__ import annotations

import fnmatch
import io
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from stackyard.compute.records import read_records, write_batches
from stackyard.compute.shuffle import counted

READ_BUFFER = 4 << 20


@dataclass(frozen=True)
class Split:
    path: str
    offset: int
    length: int
    hosts: tuple[str, ...] = ()


def input_files(fs, paths: str | list[str]) -> list[dict]:
    """The files PATHS name: files as they are, directories' files (not
    recursing, skipping names starting with _ or ., as Hadoop), globs."""
    out = []
    for path in [paths] if isinstance(paths, str) else list(paths):
        if any(c in path for c in "*?["):
            parent = posixpath.dirname(path) or "/"
            matches = [e for e in fs.ls(parent)
                       if fnmatch.fnmatchcase(e["name"], posixpath.basename(path))]
            if not matches:
                raise FileNotFoundError(2, "Input Pattern matches 0 files", path)
            out += [e for e in matches if e["type"] == "file"]
            continue
        st = fs.stat(path)
        if st["type"] == "file":
            out.append(st)
        else:
            out += [e for e in fs.ls(path) if e["type"] == "file"
                    and not e["name"].startswith(("_", "."))]
    return out


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

    @abstractmethod
    def read(self, fs, split: Split, counters: dict) -> Iterator[tuple]:
        """The records of SPLIT; adds what it read to counters["bytes_read"]."""


class TextInput(InputFormat):
    """(byte offset, line) per line, without the line ending; UTF-8."""

    def read(self, fs, split: Split, counters: dict) -> Iterator[tuple]:
        for pos, raw in _lines(fs, split, counters):
            yield pos, raw.rstrip(b"\r\n").decode("utf-8", "replace")


class KeyValueInput(InputFormat):
    """(key, value) from `key<TAB>value` lines (Hadoop's KeyValueTextInputFormat);
    a line without a tab is (line, "")."""

    def read(self, fs, split: Split, counters: dict) -> Iterator[tuple]:
        for _pos, raw in _lines(fs, split, counters):
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
            pos = start = _first_owned_line(f, split)
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


def _first_owned_line(f, split: Split) -> int:
    """Position F at the first line SPLIT owns and return its offset: a split
    that does not start the file skips through its first newline, since the
    previous split reads on past its end to finish that line."""
    pos = split.offset
    if pos:
        f.seek(pos)
        pos += len(f.readline())
    return pos


def _lines(fs, split: Split, counters: dict) -> Iterator[tuple[int, bytes]]:
    end = split.offset + split.length
    with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
        pos = start = _first_owned_line(f, split)
        for line in f:
            if pos > end:
                break
            yield pos, line
            pos += len(line)
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
        with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
            yield from read_records(f)
            counters["bytes_read"] = counters.get("bytes_read", 0) + f.tell()


class OutputFormat(ABC):
    @abstractmethod
    def write(self, f, records: Iterable[tuple], counters: dict) -> None:
        """RECORDS into the open DFS file F; counts counters["output_records"]."""


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
