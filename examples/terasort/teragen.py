"""Generate TeraSort input, or validate its output.

    python examples/terasort/teragen.py N DFS_PATH      N random 100-byte records
    python examples/terasort/teragen.py --validate DFS_DIR

Records: a 10-byte random key, then the row number (10 digits) and filler.
Validation reads the part files in order and checks that the keys never go
down, and prints the record count and an order-independent checksum (the
sum of the records' CRC32s), to compare with the input's.
"""

from __future__ import annotations

import sys
import zlib

import numpy as np

import stackyard as sy

RECORD, KEY = 100, 10


def generate(fs, n: int, path: str, seed: int = 42, block: int = 100_000) -> None:
    rng = np.random.default_rng(seed)
    with fs.open(path, "wb") as f:
        for start in range(0, n, block):
            m = min(block, n - start)
            r = np.empty((m, RECORD), dtype=np.uint8)
            r[:, :KEY] = rng.integers(32, 127, (m, KEY), dtype=np.uint8)
            ids = np.char.zfill(np.arange(start, start + m).astype("U10"), 10).astype("S10")
            r[:, KEY:20] = np.frombuffer(ids.tobytes(), dtype=np.uint8).reshape(m, 10)
            r[:, 20:] = ord("x")
            f.write(r.tobytes())


def checksum(data: bytes) -> int:
    r = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    return sum(zlib.crc32(row.tobytes()) for row in r)


def validate(fs, directory: str) -> tuple[int, int]:
    """(records, checksum); raises AssertionError if the output is not sorted."""
    last, count, total = b"", 0, 0
    for part in fs.glob(f"{directory}/part-r-*"):
        data = fs.cat(part)
        assert len(data) % RECORD == 0, f"{part}: not whole records"
        r = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
        keys = np.ascontiguousarray(r[:, :KEY]).view(f"S{KEY}").ravel()
        if len(keys):
            assert keys[0] >= last and bool(np.all(keys[1:] >= keys[:-1])), f"{part}: out of order"
            last = keys[-1]
        count += len(keys)
        total += checksum(data)
    return count, total


def main(argv: list[str]) -> int:
    with sy.connect() as client:
        if argv[:1] == ["--validate"]:
            count, total = validate(client.fs, argv[1])
            print(f"sorted: {count} records, checksum {total}")
        else:
            generate(client.fs, int(argv[0]), argv[1])
            data = client.fs.cat(argv[1])
            print(f"generated {int(argv[0])} records, checksum {checksum(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
