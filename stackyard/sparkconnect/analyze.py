"""AnalyzePlan: what a DataFrame is without running it (schema, explain,
tree string, input files, ...), and the session facts the client asks for."""

from __future__ import annotations

import hashlib

import pyspark
from pyspark.sql.connect.proto import base_pb2 as B

from stackyard.sparkconnect import types
from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.relations import RelationPlanner

SPARK_VERSION = pyspark.__version__


def analyze(session, req: B.AnalyzePlanRequest) -> B.AnalyzePlanResponse:
    out = B.AnalyzePlanResponse(session_id=session.session_id,
                                server_side_session_id=session.server_side_id)
    kind = req.WhichOneof("analyze")
    if kind == "schema":
        out.schema.schema.CopyFrom(types.schema_proto(schema(session, req.schema.plan.root)))
    elif kind == "explain":
        out.explain.explain_string = explain(session, req.explain.plan.root,
                                             req.explain.explain_mode)
    elif kind == "tree_string":
        level = req.tree_string.level if req.tree_string.HasField("level") else 0
        out.tree_string.tree_string = tree_string(schema(session, req.tree_string.plan.root),
                                                  level)
    elif kind == "is_local":
        root = req.is_local.plan.root
        out.is_local.is_local = root.WhichOneof("rel_type") in ("local_relation",
                                                                 "cached_local_relation")
    elif kind == "is_streaming":
        out.is_streaming.is_streaming = False
    elif kind == "input_files":
        out.input_files.files.extend(input_files(session, req.input_files.plan.root))
    elif kind == "spark_version":
        out.spark_version.version = SPARK_VERSION
    elif kind == "ddl_parse":
        t = types.from_ddl(req.ddl_parse.ddl_string)
        out.ddl_parse.parsed.CopyFrom(types.from_arrow(t))
    elif kind == "same_semantics":
        a = semantic(session, req.same_semantics.target_plan.root)
        b = semantic(session, req.same_semantics.other_plan.root)
        out.same_semantics.result = a == b
    elif kind == "semantic_hash":
        text = semantic(session, req.semantic_hash.plan.root)
        out.semantic_hash.result = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4],
                                                  "big", signed=True)
    elif kind == "persist":
        session.persist(req.persist.relation, req.persist.storage_level
                        if req.persist.HasField("storage_level") else None)
        out.persist.SetInParent()
    elif kind == "unpersist":
        session.unpersist(req.unpersist.relation)
        out.unpersist.SetInParent()
    elif kind == "get_storage_level":
        level = session.storage_level(req.get_storage_level.relation)
        out.get_storage_level.storage_level.CopyFrom(level)
    elif kind == "json_to_ddl":
        import json

        from pyspark.sql.types import _parse_datatype_json_string
        t = _parse_datatype_json_string(req.json_to_ddl.json_string)
        json.dumps(0)
        out.json_to_ddl.ddl_string = t.simpleString()
    else:
        raise ConnectError("UNSUPPORTED_FEATURE", f"AnalyzePlan {kind} is not supported",
                           "0A000")
    return out


def schema(session, root):
    rel = RelationPlanner(session).plan(root)
    return session.schema(rel)


def explain(session, root, mode: int) -> str:
    from stackyard.sql.physical import explain as physical
    rel = RelationPlanner(session).plan(root)
    plan, optimized = session.sql.plan(rel.query.copy(), session.catalog())
    text = ""
    if mode in (B.AnalyzePlanRequest.Explain.EXPLAIN_MODE_EXTENDED,
                B.AnalyzePlanRequest.Explain.EXPLAIN_MODE_FORMATTED):
        parsed = rel.query.sql(dialect="spark", pretty=True)
        text += "== Parsed Logical Plan ==\n" + parsed + "\n\n"
        text += "== Analyzed Logical Plan ==\n" + parsed + "\n\n"
        text += "== Optimized Logical Plan ==\n" + optimized.sql(dialect="spark",
                                                                 pretty=True) + "\n\n"
    return text + "== Physical Plan ==\n" + physical(
        plan, mode == B.AnalyzePlanRequest.Explain.EXPLAIN_MODE_EXTENDED) + "\n"


def tree_string(schema, level: int = 0) -> str:
    lines = ["root"]

    def walk(t, prefix: str, depth: int) -> None:
        import pyarrow as pa
        if level and depth > level:
            return
        if pa.types.is_struct(t):
            for f in t:
                lines.append(f"{prefix}|-- {f.name}: {_simple(f.type)} (nullable = true)")
                walk(f.type, prefix + "|    ", depth + 1)
        elif pa.types.is_list(t):
            lines.append(f"{prefix}|-- element: {_simple(t.value_type)} "
                         "(containsNull = true)")
            walk(t.value_type, prefix + "|    ", depth + 1)
    for f in schema:
        lines.append(f" |-- {f.name}: {_simple(f.type)} (nullable = true)")
        walk(f.type, " |    ", 2)
    return "\n".join(lines) + "\n"


def _simple(t) -> str:
    import pyarrow as pa
    if pa.types.is_struct(t):
        return "struct"
    if pa.types.is_list(t):
        return "array"
    if pa.types.is_map(t):
        return "map"
    return types.sql_name(t)


def input_files(session, root) -> list[str]:
    from sqlglot import exp
    rel = RelationPlanner(session).plan(root)
    files = []
    cat = session.catalog()
    for t in rel.query.find_all(exp.Table):
        try:
            table = cat.lookup(t)
        except Exception:
            continue
        loc = table.get("location")
        if loc:
            from stackyard.sql.tables import data_files
            files += [f["path"] for f in data_files(session.sql.client.fs, loc)]
    return sorted(set(files))


def semantic(session, root) -> str:
    """The plan's canonical text: optimized, without its output names (Spark
    compares plans so: `withColumn("a", e)` and `withColumn("b", e)` agree)."""
    from sqlglot import exp
    rel = RelationPlanner(session).plan(root)
    try:
        tree = session.catalog().compile(rel.query.copy())
    except Exception:
        tree = rel.query.copy()
    tree = tree.transform(lambda n: n.this if isinstance(n, exp.Alias) else n)
    # the FROM aliases are numbered per plan: name them by first appearance
    import re
    seen: dict[str, str] = {}
    return re.sub(r"`(?:s|t)\d+`", lambda m: seen.setdefault(m.group(0), f"`a{len(seen)}`"),
                  tree.sql(dialect="spark"))
