from __future__ import annotations

import random

import pytest

from tests.conftest import MiniCluster

# 5 s: the tests run two at a time on two cores, and a worker whose heartbeat a
# loaded machine delays by 2 s is not dead (its tasks would run twice)
ENGINE = dict(workers=2, worker_dead_after=5.0, speculative_min_seconds=1.0, worker_slots=2)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A cluster with a scheduler and 2 workers, shared by a module's tests."""
    c = MiniCluster(tmp_path_factory.mktemp("yard"), **ENGINE)
    yield c
    c.close()


def make_text(lines: int, seed: int = 1, vocabulary: int = 300) -> str:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocabulary)]
    return "".join(" ".join(rng.choice(words) for _ in range(rng.randint(0, 14))) + "\n"
                   for _ in range(lines))


def read_output(fs, path: str) -> dict[str, str]:
    out = {}
    for p in fs.glob(f"{path}/part-*"):
        for line in fs.cat(p).decode().splitlines():
            k, _, v = line.partition("\t")
            assert k not in out, f"key {k!r} in two part files"
            out[k] = v
    return out
