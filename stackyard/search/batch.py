"""Batch indexing on the engine: a MapReduce job whose maps parse documents
(one per input line: JSON, or text as {"text": line}) and route each to its
shard by the same hash the search servers use, and whose reduces (one per
shard) build that shard's segment and write its files straight into the
shard's DFS directory. The search servers then open those files and take
the segment in without analyzing anything again (`POST /INDEX/_import`),
as MapReduce built Google's index for its serving machines."""

from __future__ import annotations

import json
import uuid

import crc32c

from stackyard.mapreduce.job import Job


def route(doc_id: str, shards: int) -> int:
    return crc32c.crc32c(doc_id.encode()) % shards


class IndexBuild(Job):
    name = "search-index-build"
    speculative = False          # one attempt writes a shard's files (a retry rewrites them)
    mapping: dict = {}
    settings: dict = {}
    dirs: list = []
    segment: str = ""
    id_field: str = "id"

    def mapper(self, offset, line):
        text = line.strip() if isinstance(line, str) else line.decode("utf-8", "replace").strip()
        if not text:
            return
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict):
                raise ValueError
        except ValueError:
            doc = {"text": text}
        doc_id = str(doc[self.id_field]) if self.id_field in doc else \
            f"{self.segment}-{offset}"
        self.increment("documents")
        yield route(doc_id, len(self.dirs)), (doc_id, json.dumps(doc, separators=(",", ":")))

    def partitioner(self, key, partitions: int) -> int:
        return key % partitions

    def reducer(self, shard, values):
        from stackyard.search.schema import Schema
        from stackyard.search.segment import SegmentBuilder
        schema = Schema(self.mapping, self.settings)
        latest: dict[str, str] = {}
        for doc_id, raw in values:
            latest[doc_id] = raw            # a later line with the same id wins
        b = SegmentBuilder(self.segment, lambda f, t: schema.index_analyzer(f)(t))
        for i, (doc_id, raw) in enumerate(latest.items()):
            parsed, _ = schema.mapping.parse(json.loads(raw))
            b.add(doc_id, parsed, raw.encode(), i, 1, 1)
        seg = b.build()
        fs = self.ctx.fs
        for part, data in seg.files().items():
            with fs.open(f"{self.dirs[shard]}/{self.segment}.{part}", "wb") as f:
                f.write(data)
        yield shard, json.dumps({"docs": len(latest), "mapping": schema.mapping.to_dict()})


def build(client, search, input_path: str, index: str, shards: int = 1,
          id_field: str = "id", mapping: dict | None = None, progress=None) -> dict:
    """Run the job for INDEX (made if missing, with SHARDS shards) and have
    the search servers take its segments in. SEARCH: a SearchClient."""
    from stackyard.search.client import SearchError
    try:
        meta = search.request("GET", f"/{index}")[index]
    except SearchError as exc:
        if exc.status != 404:
            raise
        search.request("PUT", f"/{index}", {"settings": {"number_of_shards": shards},
                                            "mappings": mapping or {}})
        meta = search.request("GET", f"/{index}")[index]
    settings = meta["settings"]["index"]
    n = int(settings["number_of_shards"])
    base = f"/stackyard/search/{index}-{settings['uuid']}"
    segment = f"_import{uuid.uuid4().hex[:8]}"
    job = IndexBuild(reducers=n, mapping=meta["mappings"],
                     settings={"index": {"analysis": settings.get("analysis") or {}}},
                     dirs=[f"{base}/{i}" for i in range(n)], segment=segment,
                     id_field=id_field)
    out = f"/tmp/search-import/{segment}"
    result = job.run(input_path, out, client=client, progress=progress)
    for part in client.fs.glob(f"{out}/part-*"):     # fields the documents brought
        for line in client.fs.cat(part).decode().splitlines():
            got = json.loads(line.split("\t", 1)[1])
            if got["mapping"].get("properties"):
                search.request("PUT", f"/{index}/_mapping", got["mapping"])
    taken = search.request("POST", f"/{index}/_import", {"segment": segment})
    try:
        client.fs.rm(out, recursive=True)
    except OSError:
        pass
    return {"documents": result.counters.get("documents", 0), "job": result.id,
            "segment": segment, "shards": taken["shards"], "seconds": result.seconds}
