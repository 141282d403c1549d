"""Writer leases: one writer per file, renewed while it writes (HDFS's
LeaseManager). Pure: the clock is passed in."""

from __future__ import annotations


class Leases:
    def __init__(self, timeout: float):
        self.timeout = timeout
        self._by_path: dict[str, tuple[str, float]] = {}   # path -> (holder, expiry)

    def grant(self, path: str, holder: str, now: float) -> None:
        self._by_path[path] = (holder, now + self.timeout)

    def holder(self, path: str) -> str | None:
        entry = self._by_path.get(path)
        return entry[0] if entry else None

    def renew(self, holder: str, now: float) -> int:
        n = 0
        for path, (h, _) in self._by_path.items():
            if h == holder:
                self._by_path[path] = (h, now + self.timeout)
                n += 1
        return n

    def release(self, path: str) -> None:
        self._by_path.pop(path, None)

    def _under(self, top: str) -> list[str]:
        prefix = top.rstrip("/") + "/"
        return [p for p in self._by_path if p == top or p.startswith(prefix)]

    def moved(self, src: str, dst: str) -> None:
        """A rename carries the leases of the files under SRC along."""
        for path in self._under(src):
            self._by_path[dst + path[len(src):]] = self._by_path.pop(path)

    def release_tree(self, top: str) -> None:
        """TOP and everything under it was deleted."""
        for path in self._under(top):
            del self._by_path[path]

    def paths(self) -> list[str]:
        """The files being written (every file under construction has a lease)."""
        return list(self._by_path)

    def expired(self, now: float) -> list[tuple[str, str]]:
        return [(p, h) for p, (h, exp) in self._by_path.items() if exp < now]

    def __len__(self) -> int:
        return len(self._by_path)
