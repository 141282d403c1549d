"""The driver's side of the engine: submit a job, follow it, get its result."""

from __future__ import annotations

import time
from collections.abc import Callable

from stackyard import errors
from stackyard.net.auth import Secret
from stackyard.net.client import HttpPool


class JobFailed(RuntimeError):
    """The job failed; the message carries the failing task's own traceback."""

    def __init__(self, summary: dict):
        super().__init__(f"job {summary['id']} {summary['state']}: {summary['error']}")
        self.summary = summary


class EngineClient:
    def __init__(self, scheduler: str, secret: Secret):
        self.scheduler = scheduler
        self.pool = HttpPool(secret, timeout=60)

    def call(self, name: str, **args):
        try:
            return self.pool.call(self.scheduler, name, **args)
        except errors.ClusterUnavailable as exc:
            raise errors.ClusterUnavailable(f"scheduler unreachable: {exc}") from None

    def submit(self, spec: dict, payload: bytes) -> str:
        return self.call("submit", spec=spec, payload=payload)["job"]

    def status(self, job: str, wait: float = 0.0) -> dict:
        return self.call("status", job=job, wait=wait)

    def kill(self, job: str, reason: str = "") -> None:
        self.call("kill", job=job, **({"reason": reason} if reason else {}))

    def jobs(self) -> list[dict]:
        return self.call("jobs")

    def workers(self) -> list[dict]:
        return self.call("workers")

    def results(self, job: str, stage: int, forget: bool = False) -> list[bytes | None]:
        """What each task of STAGE returned to the driver (FORGET: and drop it
        from the scheduler's memory)."""
        return self.call("results", job=job, stage=stage, forget=forget)

    def blocks(self, prefix: str | list[str]) -> dict[str, list[list[str]]]:
        """{block id: [[worker, address], ...]}: where the cached partitions
        whose ids start with PREFIX (or one of a list of them) are."""
        if isinstance(prefix, list):
            return self.call("blocks", prefixes=prefix)
        return self.call("blocks", prefix=prefix)

    def drop_blocks(self, prefix: str) -> None:
        self.call("drop_blocks", prefix=prefix)

    def wait(self, job: str, progress: Callable[[dict], None] | None = None,
             timeout: float | None = None) -> dict:
        """Until JOB ends; PROGRESS gets every summary on the way. Raises
        JobFailed unless it succeeded."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            summary = self.status(job, wait=2.0)
            if progress is not None:
                progress(summary)
            if summary["state"] != "running":
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job} still running after {timeout} s")
        if summary["state"] != "succeeded":
            raise JobFailed(summary)
        return summary

    def close(self) -> None:
        self.pool.close()
