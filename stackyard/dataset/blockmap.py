"""Where a job's cached partitions are, as its tasks need to know it: for
each persisted node, the worker holding each of its partitions (two bytes a
partition) and the workers' addresses. A dict of block ids held 30,000
entries in the later rounds of an iterative program, and every task paid to
unpickle it."""

from __future__ import annotations

from array import array


class BlockMap:
    def __init__(self, blocks: dict[str, list[list[str]]]):
        """BLOCKS: {"APP/rdd_NODE_SPLIT": [[worker, address], ...]}, the scheduler's answer."""
        self.addresses: list[str] = []
        index: dict[str, int] = {}
        found: dict[int, dict[int, int]] = {}
        for bid, holders in blocks.items():
            if not holders:
                continue
            node, split = _parse(bid)
            address = holders[0][1]
            if address not in index:
                index[address] = len(self.addresses)
                self.addresses.append(address)
            found.setdefault(node, {})[split] = index[address] + 1
        self.held: dict[int, array] = {}
        for node, splits in found.items():
            row = array("H", bytes(2 * (max(splits) + 1)))
            for split, i in splits.items():
                row[split] = i
            self.held[node] = row

    def where(self, node: int, split: int) -> list[str]:
        """The address of a worker holding SPLIT of NODE, or [] if none does."""
        row = self.held.get(node)
        if row is None or split >= len(row) or not row[split]:
            return []
        return [self.addresses[row[split] - 1]]


def _parse(bid: str) -> tuple[int, int]:
    node, _, split = bid.rpartition("/rdd_")[2].partition("_")
    return int(node), int(split)
