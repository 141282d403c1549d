"""The job history (Hadoop's JobHistory server): the scheduler writes every
finished job's summary, counters and tasks to the DFS, one file per job
under /user/history/done/YYYY/MM/DD/, and reads the last days' back when it
starts (removing older days), so that `yard mr list` and `yard mr status
JOB` still know a job after the scheduler restarts. A file is written whole under a temporary
name and renamed, so a reader never meets half of one."""

from __future__ import annotations

import json
import logging
import posixpath
import time

log = logging.getLogger("stackyard.history")
ROOT = "/user/history/done"
DAY = 86400.0


def day_dir(wall: float) -> str:
    return posixpath.join(ROOT, time.strftime("%Y/%m/%d", time.gmtime(wall)))


class JobHistory:
    def __init__(self, fs, days: float = 7.0):
        self.fs, self.days = fs, days
        self.jobs: dict[str, dict] = {}          # job id -> {"summary", "detail"}

    def record(self, summary: dict, detail: list[dict]) -> None:
        """Write a finished job (SUMMARY with wall-clock submitted_at and
        finished_at) and remember it."""
        entry = {"summary": summary, "detail": detail}
        d = day_dir(summary.get("finished_at") or time.time())
        self.fs.mkdir(d, parents=True)
        final = posixpath.join(d, f"{summary['id']}.json")
        tmp = posixpath.join(d, f".{summary['id']}.json.tmp")
        with self.fs.open(tmp, "wb") as f:
            f.write(json.dumps(entry, separators=(",", ":")).encode())
        if self.fs.exists(final):
            self.fs.rm(final)
        self.fs.mv(tmp, final)
        self.jobs[summary["id"]] = entry

    def prune(self, now: float | None = None) -> int:
        """Remove the days older than `days` (Hadoop's history server deletes
        after mapreduce.jobhistory.max-age-ms, a week); the days removed."""
        import calendar
        now = time.time() if now is None else now
        if not self.fs.exists(ROOT):
            return 0
        gone = 0
        for y in self.fs.ls(ROOT):
            for m in self.fs.ls(y["path"]) if y["type"] == "directory" else []:
                for d in self.fs.ls(m["path"]) if m["type"] == "directory" else []:
                    try:
                        day = calendar.timegm(time.strptime(
                            f"{y['name']}/{m['name']}/{d['name']}", "%Y/%m/%d"))
                    except ValueError:
                        continue            # not one of ours: left alone
                    if now - (day + DAY) > self.days * DAY:
                        self.fs.rm(d["path"], recursive=True)
                        gone += 1
        return gone

    def load(self, now: float | None = None) -> int:
        """Read the jobs of the last `days` days; the number read. A file that
        does not parse is skipped with a warning (the rest still count)."""
        now = time.time() if now is None else now
        seen = 0
        for back in range(int(self.days) + 2):
            d = day_dir(now - back * DAY)
            if not self.fs.exists(d):
                continue
            for e in self.fs.ls(d):
                if not e["name"].endswith(".json") or e["name"].startswith("."):
                    continue
                try:
                    entry = json.loads(self.fs.cat(e["path"]))
                    s = entry["summary"]
                except (ValueError, KeyError, OSError) as exc:
                    log.warning("job history: %s unreadable (%s); skipped", e["path"], exc)
                    continue
                if now - (s.get("finished_at") or now) <= self.days * DAY:
                    self.jobs.setdefault(s["id"], entry)
                    seen += 1
        return seen
