"""Elasticsearch's `_bulk` body: NDJSON, an action line (index, create,
update, delete) followed, except for a delete, by its document. Parsed
whole before anything is written, so a malformed body writes nothing; an
error names the line it is on."""

from __future__ import annotations

import json

from stackyard.search.coordinator import SearchError

# the HTTP status of an item's (or a single write's) error, by its type
_STATUS = {"version_conflict_engine_exception": 409, "document_missing_exception": 404,
           "index_not_found_exception": 404}


def status_of(kind: str) -> int:
    return _STATUS.get(kind, 400)


def parse(raw: bytes, default: str | None) -> tuple[list, dict]:
    """([(action, index)], {index: [(item position, write request)]})."""
    lines = [ln for ln in raw.split(b"\n") if ln.strip()]
    items, groups = [], {}
    i = 0
    while i < len(lines):
        try:
            action = json.loads(lines[i])
            (kind, meta), = action.items()
        except (ValueError, AttributeError):
            raise SearchError("illegal_argument_exception",
                              f"Malformed action/metadata line [{i + 1}], expected "
                              "START_OBJECT or END_OBJECT") from None
        if kind not in ("index", "create", "update", "delete"):
            raise SearchError("illegal_argument_exception",
                              f"Malformed action/metadata line [{i + 1}], expected one of "
                              f"[create, delete, index, update] but found [{kind}]")
        index = meta.get("_index", default)
        if index is None:
            raise SearchError("action_request_validation_exception",
                              "Validation Failed: 1: index is missing;")
        req = {"id": None if meta.get("_id") is None else str(meta["_id"])}
        if "if_seq_no" in meta:
            req["if_seq_no"], req["if_primary_term"] = meta["if_seq_no"], \
                meta.get("if_primary_term", 0)
        if "routing" in meta:
            req["routing"] = meta["routing"]
        if kind == "delete":
            req["kind"] = "delete"
            i += 1
        else:
            if i + 1 >= len(lines):
                raise SearchError("illegal_argument_exception",
                                  f"The bulk request must be terminated by a newline "
                                  f"[\\n] (action on line {i + 1} has no document)")
            try:
                doc = json.loads(lines[i + 1])
            except ValueError as exc:
                raise SearchError("parse_exception", f"line {i + 2}: {exc}") from None
            if kind == "update":
                req.update(kind="update", doc=doc.get("doc"), upsert=doc.get("upsert"),
                           doc_as_upsert=doc.get("doc_as_upsert", False))
            else:
                req.update(kind="index", source=doc,
                           op_type="create" if kind == "create" else "index")
            i += 2
        items.append((kind, index))
        groups.setdefault(index, []).append((len(items) - 1, req))
    return items, groups
