"""Storage levels, with PySpark's names: where a persisted dataset's
partitions are kept. Partitions are always kept pickled (as PySpark keeps
them in the JVM), so the levels differ only in memory versus disk."""

from __future__ import annotations


class StorageLevel:
    def __init__(self, useDisk: bool, useMemory: bool, useOffHeap: bool = False,  # noqa: N803
                 deserialized: bool = False, replication: int = 1):
        self.useDisk, self.useMemory = useDisk, useMemory
        self.useOffHeap, self.deserialized, self.replication = useOffHeap, deserialized, replication

    @property
    def block_level(self) -> str:
        """The worker block store's name for this level."""
        if self.useMemory and self.useDisk:
            return "memory_and_disk"
        return "memory" if self.useMemory else "disk"

    def __eq__(self, other) -> bool:
        return isinstance(other, StorageLevel) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(tuple(vars(self).values()))

    def __repr__(self) -> str:
        return (f"StorageLevel({self.useDisk}, {self.useMemory}, {self.useOffHeap}, "
                f"{self.deserialized}, {self.replication})")

    def __str__(self) -> str:
        parts = [p for p, on in (("Disk", self.useDisk), ("Memory", self.useMemory)) if on]
        parts.append("Deserialized" if self.deserialized else "Serialized")
        return f"{' '.join(parts)} {self.replication}x Replicated"


StorageLevel.NONE = StorageLevel(False, False)
StorageLevel.DISK_ONLY = StorageLevel(True, False)
StorageLevel.MEMORY_ONLY = StorageLevel(False, True)
StorageLevel.MEMORY_AND_DISK = StorageLevel(True, True)
