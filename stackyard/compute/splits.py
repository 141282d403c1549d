"""Input splits over DFS files, and the lines a split owns: what every front
end of the engine (MapReduce's input formats, the dataset API's textFile)
reads its input with.

Splits follow DFS chunks (Hadoop's FileInputFormat with the block size as
split size), or a size the caller chooses: each names the chunkservers
holding its start, so the scheduler can run its task beside one. A line
crossing a split boundary belongs to the split where it starts: a split
other than the first skips through its first newline, and every split reads
on past its end to finish its last line (Hadoop's LineRecordReader).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

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


def first_owned_line(f, split: Split) -> int:
    """Position F at the first line SPLIT owns and return its offset: a split
    that does not start the file skips through its first newline, since the
    previous split reads on past its end to finish that line."""
    pos = split.offset
    if pos:
        f.seek(pos)
        pos += len(f.readline())
    return pos


def owned_lines(fs, split: Split, counters: dict) -> Iterator[tuple[int, bytes]]:
    end = split.offset + split.length
    with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
        pos = start = first_owned_line(f, split)
        for line in f:
            if pos > end:
                break
            yield pos, line
            pos += len(line)
        counters["bytes_read"] = counters.get("bytes_read", 0) + (pos - start)


def owned_bytes(fs, split: Split, counters: dict) -> bytes:
    """The whole lines SPLIT owns (owned_lines' rule: those starting after its
    offset, or at it for the first split, up to and including its end), read
    in bulk rather than a line at a time."""
    end = split.offset + split.length
    with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
        pos = first_owned_line(f, split)
        if pos > end:
            return b""
        data = f.read(end - pos + 1)
        if data and not data.endswith(b"\n"):
            data += f.readline()
    counters["bytes_read"] = counters.get("bytes_read", 0) + len(data)
    return data


def text_lines(fs, split: Split, counters: dict) -> Iterator[tuple[int, str]]:
    """(byte offset, line) for the lines SPLIT owns, without line endings, UTF-8."""
    for pos, raw in owned_lines(fs, split, counters):
        yield pos, raw.rstrip(b"\r\n").decode("utf-8", "replace")


def file_records(fs, split: Split, counters: dict) -> Iterator:
    """The records of a whole file of framed pickle batches (compute/records.py)."""
    from stackyard.compute.records import read_records
    with fs.open(split.path, "rb", buffer_size=READ_BUFFER) as f:
        yield from read_records(f)
        counters["bytes_read"] = counters.get("bytes_read", 0) + f.tell()
