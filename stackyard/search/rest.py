"""Elasticsearch's REST API, enough of it for the official `elasticsearch`
Python client (8 and 9) to work unchanged: the product header on every
answer, the client's compatible-with media types, Elasticsearch's error
bodies and status codes.

Authentication: the cluster secret or a token from `yard token`, as the
password of Basic auth or as a Bearer token (an ApiKey header carries the
same). Anything else is 401 with Elasticsearch's security_exception."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time

from aiohttp import web

from stackyard import errors
from stackyard.search import bulk
from stackyard.search.analysis import AnalysisError
from stackyard.search.coordinator import SearchError, not_found
from stackyard.search.query import QueryError

log = logging.getLogger("stackyard.search.rest")
VERSION = "9.1.0"
MAX_BODY = 100 << 20             # http.max_content_length
_MEDIA = "application/vnd.elasticsearch+json"


def _respond(request: web.Request, body, status: int = 200) -> web.Response:
    accept = request.headers.get("Accept", "")
    ctype = "application/json"
    if "compatible-with=" in accept:
        ctype = f"{_MEDIA};compatible-with={accept.split('compatible-with=')[1][:1]}"
    text = "" if request.method == "HEAD" else json.dumps(body)
    resp = web.Response(text=text, status=status, headers={"X-Elastic-Product": "Elasticsearch"})
    resp.content_type = ctype.split(";")[0]
    if ";" in ctype:
        resp.headers["Content-Type"] = ctype
    return resp


def _error(request, kind: str, reason: str, status: int, **extra) -> web.Response:
    cause = {"type": kind, "reason": reason, **extra}
    return _respond(request, {"error": {"root_cause": [cause], **cause}, "status": status},
                    status)


def make_app(daemon) -> web.Application:
    app = web.Application(middlewares=[_middleware(daemon)], client_max_size=MAX_BODY)
    app["daemon"] = daemon
    h = Handlers(daemon)
    r = app.router
    r.add_route("GET", "/", h.root)
    r.add_route("HEAD", "/", h.root)
    r.add_route("*", "/_bulk", h.bulk)
    r.add_route("*", "/_search", h.search)
    r.add_route("*", "/_search/scroll", h.scroll)
    r.add_route("DELETE", "/_search/scroll/{scroll_id}", h.clear_scroll)
    r.add_route("*", "/_count", h.count)
    r.add_route("*", "/_mget", h.mget)
    r.add_route("*", "/_refresh", h.refresh)
    r.add_route("*", "/_flush", h.flush)
    r.add_route("*", "/_forcemerge", h.forcemerge)
    r.add_route("*", "/_analyze", h.analyze)
    r.add_route("GET", "/_cat/indices", h.cat_indices)
    r.add_route("GET", "/_cat/indices/{index}", h.cat_indices)
    r.add_route("GET", "/_cat/health", h.cat_health)
    r.add_route("GET", "/_cluster/health", h.health)
    r.add_route("GET", "/_cluster/health/{index}", h.health)
    r.add_route("*", "/{index}/_bulk", h.bulk)
    r.add_route("*", "/{index}/_search", h.search)
    r.add_route("*", "/{index}/_count", h.count)
    r.add_route("*", "/{index}/_mget", h.mget)
    r.add_route("*", "/{index}/_refresh", h.refresh)
    r.add_route("*", "/{index}/_flush", h.flush)
    r.add_route("*", "/{index}/_forcemerge", h.forcemerge)
    r.add_route("*", "/{index}/_analyze", h.analyze)
    r.add_route("*", "/{index}/_mapping", h.mapping)
    r.add_route("GET", "/{index}/_settings", h.settings)
    r.add_route("GET", "/{index}/_stats", h.index_stats)
    r.add_route("POST", "/{index}/_import", h.import_segment)
    r.add_route("*", "/{index}/_doc", h.doc_auto)
    r.add_route("*", "/{index}/_doc/{id}", h.doc)
    r.add_route("*", "/{index}/_create/{id}", h.create)
    r.add_route("*", "/{index}/_update/{id}", h.update)
    r.add_route("*", "/{index}/_source/{id}", h.source)
    r.add_route("*", "/{index}", h.index)
    return app


def _middleware(daemon):
    @web.middleware
    async def guard(request: web.Request, handler):
        user, why = _authenticate(daemon.secret, request)
        if user is None:
            resp = _error(request, "security_exception", why, 401,
                          header={"WWW-Authenticate": 'Basic realm="security" charset="UTF-8"'})
            resp.headers["WWW-Authenticate"] = 'Basic realm="security" charset="UTF-8", ' \
                                               'Bearer realm="security", ApiKey'
            return resp
        if daemon.coord_api is None:
            return _error(request, "cluster_block_exception", "search server starting", 503)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status == 404:
                return _error(request, "illegal_argument_exception",
                              f"no handler found for uri [{request.path}] and method "
                              f"[{request.method}]", 400)
            if exc.status == 405:
                return _error(request, "illegal_argument_exception",
                              f"Incorrect HTTP method for uri [{request.path}] and method "
                              f"[{request.method}]", 405)
            if exc.status == 413:
                return _error(request, "content_too_long_exception",
                              f"request body is larger than {MAX_BODY} bytes", 413)
            raise
        except SearchError as exc:
            return _error(request, exc.kind, exc.reason, exc.status, **exc.extra)
        except errors.AuthError as exc:
            return _error(request, "security_exception", str(exc), 403)
        except QueryError as exc:
            return _error(request, exc.kind, str(exc), 400)
        except AnalysisError as exc:
            return _error(request, "illegal_argument_exception", str(exc), 400)
        except RecursionError:
            return _error(request, "parsing_exception", "the request nests too deeply", 400)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            kind = getattr(exc, "kind", None)
            if kind == "version_conflict_engine_exception":
                return _error(request, kind, str(exc), 409)
            if kind == "document_missing_exception":
                return _error(request, kind, str(exc), 404)
            return _error(request, kind or "parse_exception",
                          f"{type(exc).__name__}: {exc}" if not kind else str(exc), 400)
        except (OSError, errors.StackyardError) as exc:
            log.warning("%s %s: %s", request.method, request.path, exc)
            return _error(request, "unavailable_shards_exception", str(exc), 503)
        except Exception as exc:  # noqa: BLE001 - a bug: say so, keep serving
            log.exception("%s %s", request.method, request.path)
            return _error(request, "exception", f"{type(exc).__name__}: {exc}", 500)
    return guard


def _authenticate(secret, request) -> tuple[str | None, str]:
    header = request.headers.get("Authorization", "")
    missing = f"missing authentication credentials for REST request [{request.path}]"
    if not header:
        return None, missing
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    user, credential = "", ""
    try:
        if scheme == "basic":
            user, _, credential = base64.b64decode(value).decode().partition(":")
        elif scheme in ("bearer", "apikey"):
            credential = value.strip()
            if scheme == "apikey":
                decoded = base64.b64decode(credential + "=" * (-len(credential) % 4)).decode()
                credential = decoded.partition(":")[2] or decoded
        else:
            return None, missing
    except (ValueError, UnicodeDecodeError):
        return None, "malformed Authorization header"
    if credential and secret.matches(credential.encode()):
        return user or "elastic", ""
    tok, why = secret.check_delegation_token(credential) if credential else (None, missing)
    if tok is not None:
        return tok.user, ""
    return None, f"unable to authenticate user [{user or 'token'}] for REST request " \
                 f"[{request.path}]: {why}"


async def _body(request: web.Request):
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SearchError("parse_exception", f"request body is not valid JSON: {exc}") from None


def _flag(request, name: str, default=False):
    v = request.query.get(name)
    if v is None:
        return default
    return v in ("", "true", "wait_for")


class Handlers:
    def __init__(self, daemon):
        self.d = daemon

    def _c(self):
        return self.d.coord_api

    async def _run(self, fn, *args):
        return await asyncio.to_thread(fn, *args)

    async def root(self, request):
        node = self.d.node
        return _respond(request, {
            "name": node.name, "cluster_name": "stackyard", "cluster_uuid": "stackyard",
            "version": {"number": VERSION, "build_flavor": "default", "build_type": "stackyard",
                        "build_hash": "stackyard", "build_date": "2026-12-01T00:00:00.000Z",
                        "build_snapshot": False, "lucene_version": "10.2.0",
                        "minimum_wire_compatibility_version": "8.19.0",
                        "minimum_index_compatibility_version": "8.0.0"},
            "tagline": "You Know, for Search"})

    # -- indices ------------------------------------------------------------------------------

    async def index(self, request):
        name = request.match_info["index"]
        c = self._c()
        await self._run(self.d.node.read_state)
        if request.method == "PUT":
            body = await _body(request) or {}
            return _respond(request, await self._run(c.create_index, name, body))
        if request.method == "DELETE":
            return _respond(request, await self._run(c.delete_index, name))
        if request.method == "HEAD":
            try:
                await self._run(c.indices, name)
                return _respond(request, {}, 200)
            except SearchError:
                return _respond(request, {}, 404)
        if request.method == "GET":
            out = {}
            for n in await self._run(c.indices, name):
                meta = self.d.node.indices[n]
                out[n] = {"aliases": {}, "mappings": meta["schema"].mapping.to_dict(),
                          "settings": self._settings(meta["meta"])}
            return _respond(request, out)
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT", "DELETE", "HEAD"])

    def _settings(self, meta: dict) -> dict:
        index = dict(meta["settings"]["index"])
        index["uuid"] = meta["uuid"]
        index["creation_date"] = str(int(meta["created"] * 1000))
        return {"index": index}

    async def mapping(self, request):
        c = self._c()
        await self._run(self.d.node.read_state)     # a write elsewhere may have grown it
        names = await self._run(c.indices, request.match_info["index"])
        if request.method in ("PUT", "POST"):
            body = await _body(request) or {}
            for n in names:
                await self._run(self._put_mapping, n, body)
            return _respond(request, {"acknowledged": True})
        return _respond(request, {n: {"mappings": self.d.node.indices[n]["schema"]
                                      .mapping.to_dict()} for n in names})

    def _put_mapping(self, name: str, body: dict) -> None:
        from stackyard.search.mapping import MappingError
        schema = self.d.node.indices[name]["schema"]
        try:
            schema.mapping.merge(body)
        except MappingError as exc:
            raise SearchError(exc.kind, str(exc)) from None
        self.d.node.publish_mapping(name)

    async def settings(self, request):
        names = await self._run(self._c().indices, request.match_info["index"])
        return _respond(request, {n: {"settings": self._settings(self.d.node.indices[n]["meta"])}
                                  for n in names})

    async def index_stats(self, request):
        names = await self._run(self._c().indices, request.match_info["index"])
        stats = await self._run(self._c().stats)
        out = {}
        for n in names:
            s = stats.get(n, {"docs": 0, "deleted": 0, "bytes": 0})
            p = {"docs": {"count": s["docs"], "deleted": s["deleted"]},
                 "store": {"size_in_bytes": s["bytes"]}}
            out[n] = {"primaries": p, "total": p}
        return _respond(request, {"indices": out})

    # -- documents ------------------------------------------------------------------------------

    def _shards(self, res: dict) -> dict:
        return {"total": 1, "successful": 1, "failed": 0}

    async def _write_one(self, request, index: str, req: dict, ok_status: int = 200):
        c = self._c()
        if "if_seq_no" in request.query:
            req["if_seq_no"] = int(request.query["if_seq_no"])
            req["if_primary_term"] = int(request.query.get("if_primary_term", 0))
        if "routing" in request.query:
            req["routing"] = request.query["routing"]
        res = (await self._run(c.write, index, [req]))[0]
        if "error" in res:
            e = res["error"]
            return _error(request, e["type"], e["reason"], bulk.status_of(e["type"]),
                          index=index)
        if _flag(request, "refresh"):
            await self._run(c.admin, index, "refresh")
        res["_shards"] = self._shards(res)
        status = 201 if res.get("result") == "created" else (
            404 if res.get("result") == "not_found" else ok_status)
        return _respond(request, res, status)

    async def doc_auto(self, request):
        if request.method not in ("POST", "PUT"):
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        body = await _body(request)
        if not isinstance(body, dict):
            raise SearchError("parse_exception", "request body is required")
        return await self._write_one(request, request.match_info["index"],
                                     {"kind": "index", "id": None, "source": body,
                                      "op_type": "create"})

    async def doc(self, request):
        index, doc_id = request.match_info["index"], request.match_info["id"]
        if request.method in ("PUT", "POST"):
            body = await _body(request)
            if not isinstance(body, dict):
                raise SearchError("parse_exception", "request body is required")
            op_type = request.query.get("op_type", "index")
            return await self._write_one(request, index, {"kind": "index", "id": doc_id,
                                                          "source": body, "op_type": op_type})
        if request.method == "DELETE":
            return await self._write_one(request, index, {"kind": "delete", "id": doc_id})
        if request.method in ("GET", "HEAD"):
            got = await self._run(self._c().get, index, doc_id, request.query.get("routing"))
            if got is None:
                return _respond(request, {"_index": index, "_id": doc_id, "found": False}, 404)
            out = {"_index": index, "_id": doc_id, "_version": got["_version"],
                   "_seq_no": got["_seq_no"], "_primary_term": got["_primary_term"],
                   "found": True}
            if request.query.get("_source", "true") != "false":
                out["_source"] = got["_source"]
            return _respond(request, out)
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT", "POST", "DELETE"])

    async def create(self, request):
        body = await _body(request)
        if not isinstance(body, dict):
            raise SearchError("parse_exception", "request body is required")
        return await self._write_one(request, request.match_info["index"],
                                     {"kind": "index", "id": request.match_info["id"],
                                      "source": body, "op_type": "create"})

    async def update(self, request):
        body = await _body(request) or {}
        req = {"kind": "update", "id": request.match_info["id"], "doc": body.get("doc"),
               "upsert": body.get("upsert"), "doc_as_upsert": body.get("doc_as_upsert", False),
               "detect_noop": body.get("detect_noop", True)}
        if "script" in body:
            raise SearchError("illegal_argument_exception", "scripted updates are not "
                              "supported here; send a partial `doc`")
        return await self._write_one(request, request.match_info["index"], req)

    async def source(self, request):
        index, doc_id = request.match_info["index"], request.match_info["id"]
        got = await self._run(self._c().get, index, doc_id)
        if got is None:
            return _error(request, "resource_not_found_exception",
                          f"Document not found [{index}]/[{doc_id}]", 404)
        return _respond(request, got["_source"])

    async def mget(self, request):
        body = await _body(request) or {}
        default = request.match_info.get("index")
        docs = body.get("docs") or [{"_id": i} for i in body.get("ids", [])]
        out = []
        for d in docs:
            index = d.get("_index", default)
            try:
                got = await self._run(self._c().get, index, str(d["_id"]))
            except SearchError as exc:
                out.append({"_index": index, "_id": d["_id"],
                            "error": {"type": exc.kind, "reason": exc.reason}})
                continue
            if got is None:
                out.append({"_index": index, "_id": d["_id"], "found": False})
            else:
                out.append({"_index": index, "_id": d["_id"], "_version": got["_version"],
                            "_seq_no": got["_seq_no"], "_primary_term": got["_primary_term"],
                            "found": True, "_source": got["_source"]})
        return _respond(request, {"docs": out})

    async def bulk(self, request):
        started = time.monotonic()
        raw = await request.read()
        default = request.match_info.get("index")
        items, groups = bulk.parse(raw, default)
        results: list = [None] * len(items)
        for index, reqs in groups.items():
            try:
                got = await self._run(self._c().write, index, [r for _, r in reqs])
            except SearchError as exc:
                got = [{"_index": index, "_id": r.get("id"),
                        "error": {"type": exc.kind, "reason": exc.reason}} for _, r in reqs]
            for (pos, _), res in zip(reqs, got, strict=True):
                results[pos] = res
        if _flag(request, "refresh"):
            for index in groups:
                await self._run(self._c().admin, index, "refresh")
        out_items, failed = [], False
        for (kind, index), res in zip(items, results, strict=True):
            res.setdefault("_index", index)
            if "error" in res:
                failed = True
                res["status"] = bulk.status_of(res["error"]["type"])
            else:
                res["_shards"] = self._shards(res)
                res["status"] = 201 if res["result"] == "created" else (
                    404 if res["result"] == "not_found" else 200)
            out_items.append({kind: res})
        return _respond(request, {"took": int((time.monotonic() - started) * 1000),
                                  "errors": failed, "items": out_items})

    # -- search ---------------------------------------------------------------------------------

    async def _search_body(self, request) -> dict:
        body = await _body(request) or {}
        q = request.query
        if "q" in q:
            body["query"] = {"query_string": {"query": q["q"],
                                              "default_field": q.get("df", "*")}}
        for k in ("from", "size"):
            if k in q:
                body[k] = int(q[k])
        if "sort" in q:
            body["sort"] = q["sort"].split(",")
        if "track_total_hits" in q:
            v = q["track_total_hits"]
            body["track_total_hits"] = v == "true" if v in ("true", "false") else int(v)
        return body

    async def search(self, request):
        body = await self._search_body(request)
        index = request.match_info.get("index")
        if "scroll" in request.query:
            return _respond(request, await self._run(self._c().scroll_start, index, body,
                                                     request.query["scroll"]))
        return _respond(request, await self._run(self._c().search, index, body))

    async def scroll(self, request):
        if request.method == "DELETE":
            return await self.clear_scroll(request)
        body = await _body(request) or {}
        scroll_id = body.get("scroll_id") or request.query.get("scroll_id")
        if not scroll_id:
            raise SearchError("action_request_validation_exception",
                              "Validation Failed: 1: scrollId is missing;")
        return _respond(request, await self._run(self._c().scroll_next, scroll_id))

    async def clear_scroll(self, request):
        body = await _body(request) or {}
        ids = body.get("scroll_id") or request.match_info.get("scroll_id") or []
        ids = ids if isinstance(ids, list) else [ids]
        n = sum(self._c().scrolls.pop(i, None) is not None for i in ids)
        return _respond(request, {"succeeded": True, "num_freed": n})

    async def count(self, request):
        body = await self._search_body(request)
        body = {"query": body["query"]} if "query" in body else {}
        return _respond(request, await self._run(self._c().search,
                                                 request.match_info.get("index"), body, True))

    async def import_segment(self, request):
        """Ours, not Elasticsearch's: take in the segments `yard search index` built."""
        body = await _body(request) or {}
        if not isinstance(body.get("segment"), str):
            raise SearchError("illegal_argument_exception", "[segment] is required")
        return _respond(request, await self._run(self._c().import_segment,
                                                 request.match_info["index"], body["segment"]))

    async def refresh(self, request):
        return _respond(request, await self._run(self._c().admin,
                                                 request.match_info.get("index"), "refresh"))

    async def flush(self, request):
        return _respond(request, await self._run(self._c().admin,
                                                 request.match_info.get("index"), "flush"))

    async def forcemerge(self, request):
        n = int(request.query.get("max_num_segments", 1))
        return _respond(request, await self._run(self._c().admin,
                                                 request.match_info.get("index"),
                                                 "forcemerge", n))

    async def analyze(self, request):
        from stackyard.search.schema import Schema
        body = await _body(request) or {}
        index = request.match_info.get("index")
        schema = self.d.node.indices[(await self._run(self._c().indices, index))[0]]["schema"] \
            if index else Schema()
        texts = body.get("text", "")
        texts = texts if isinstance(texts, list) else [texts]
        if "field" in body and "analyzer" not in body:
            analyzer = schema.index_analyzer(body["field"])
        else:
            analyzer = schema.registry.adhoc(body)
        tokens = []
        for text in texts:
            t = analyzer(str(text), offsets=True)
            for term, pos, s, e in zip(t.terms, t.pos(), t.starts, t.ends, strict=True):
                tokens.append({"token": term, "start_offset": s, "end_offset": e,
                               "type": "<ALPHANUM>", "position": pos})
        return _respond(request, {"tokens": tokens})

    # -- cluster ---------------------------------------------------------------------------------

    async def health(self, request):
        out = await self._run(self._c().health, request.match_info.get("index"))
        want = request.query.get("wait_for_status")
        if want:
            order = {"red": 0, "yellow": 1, "green": 2}
            deadline = time.monotonic() + float(request.query.get("timeout", "30s")
                                                .rstrip("s") or 30)
            while order[out["status"]] < order[want] and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                out = await self._run(self._c().health, request.match_info.get("index"))
            out["timed_out"] = order[out["status"]] < order[want]
        return _respond(request, out)

    async def cat_health(self, request):
        h = await self._run(self._c().health)
        return web.Response(text=f"{int(time.time())} stackyard {h['status']} "
                                 f"{h['number_of_nodes']} {h['active_shards']}\n",
                            headers={"X-Elastic-Product": "Elasticsearch"})

    async def cat_indices(self, request):
        c = self._c()
        names = await self._run(c.indices, request.match_info.get("index", "*"))
        stats = await self._run(c.stats)
        health = {n: (await self._run(c.health, n))["status"] for n in names}
        rows = []
        for n in names:
            meta = self.d.node.indices[n]["meta"]
            s = stats.get(n, {"docs": 0, "deleted": 0, "bytes": 0})
            idx = meta["settings"]["index"]
            rows.append({"health": health[n], "status": "open", "index": n, "uuid": meta["uuid"],
                         "pri": idx["number_of_shards"], "rep": idx["number_of_replicas"],
                         "docs.count": str(s["docs"]), "docs.deleted": str(s["deleted"]),
                         "store.size": f"{s['bytes']}b", "pri.store.size": f"{s['bytes']}b"})
        if request.query.get("format") == "json" or "json" in request.headers.get("Accept", ""):
            return _respond(request, rows)
        cols = ["health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted",
                "store.size", "pri.store.size"]
        lines = ([" ".join(cols)] if "v" in request.query else []) + \
            [" ".join(str(r[k]) for k in cols) for r in rows]
        return web.Response(text="\n".join(lines) + "\n",
                            headers={"X-Elastic-Product": "Elasticsearch"})


__all__ = ["make_app", "not_found"]
