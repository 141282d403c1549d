"""ExecutePlan: a relation's rows as Arrow batches, or a command run eagerly
(spark.sql, df.write, temp views, UDF registration), as the stream of
responses a PySpark client reads."""

from __future__ import annotations

import uuid

import pyarrow as pa
from pyspark.sql.connect.proto import base_pb2 as B
from pyspark.sql.connect.proto import commands_pb2 as C
from pyspark.sql.connect.proto import relations_pb2 as R

from stackyard.sparkconnect import types
from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.relations import RelationPlanner

BATCH_ROWS = 10_000


def responses(session, req: B.ExecutePlanRequest, op_id: str) -> list:
    """Every response of REQ's execution, in order (kept for reattaching)."""
    out: list[B.ExecutePlanResponse] = []

    def new() -> B.ExecutePlanResponse:
        r = B.ExecutePlanResponse(session_id=session.session_id,
                                  server_side_session_id=session.server_side_id,
                                  operation_id=op_id, response_id=str(uuid.uuid4()))
        out.append(r)
        return r

    plan = req.plan
    kind = plan.WhichOneof("op_type")
    if kind == "root":
        table = relation_table(session, plan.root)
        arrow_responses(table, new)
    elif kind == "command":
        command(session, plan.command, new)
    else:
        raise ConnectError("UNSUPPORTED_FEATURE", f"plan of kind {kind} is not supported",
                           "0A000")
    new().result_complete.SetInParent()
    return out


def relation_table(session, rel: R.Relation) -> pa.Table:
    from stackyard.sparkconnect import extra
    kind = rel.WhichOneof("rel_type")
    if kind in ("show_string", "html_string"):
        return getattr(extra, kind + "_table")(session, getattr(rel, kind))
    planner = RelationPlanner(session)
    return session.collect(planner.plan(rel))


def arrow_responses(table: pa.Table, new) -> None:
    first = new()
    first.schema.CopyFrom(types.schema_proto(table.schema))
    batches = table.to_batches(max_chunksize=BATCH_ROWS)
    if not batches:                # the client wants one batch, if empty
        batches = [pa.RecordBatch.from_arrays([pa.array([], f.type) for f in table.schema],
                                              schema=table.schema)]
    offset = 0
    for b in batches:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_batch(b)
        r = new()
        r.arrow_batch.row_count = b.num_rows
        r.arrow_batch.data = sink.getvalue().to_pybytes()
        r.arrow_batch.start_offset = offset
        offset += b.num_rows


def command(session, cmd: C.Command, new) -> None:
    kind = cmd.WhichOneof("command_type")
    if kind == "sql_command":
        sql_command(session, cmd.sql_command, new)
    elif kind == "create_dataframe_view":
        create_view(session, cmd.create_dataframe_view)
    elif kind == "write_operation":
        from stackyard.sparkconnect.write import write
        write(session, cmd.write_operation)
    elif kind == "write_operation_v2":
        from stackyard.sparkconnect.write import write_v2
        write_v2(session, cmd.write_operation_v2)
    elif kind == "register_function":
        register_function(session, cmd.register_function)
    elif kind == "checkpoint_command":
        from stackyard.sparkconnect.write import checkpoint
        checkpoint(session, cmd.checkpoint_command, new)
    elif kind == "remove_cached_remote_relation_command":
        session.remove_cached(cmd.remove_cached_remote_relation_command.relation.relation_id)
    else:
        raise ConnectError("UNSUPPORTED_FEATURE",
                           f"The command {kind} is not supported by Stackyard", "0A000")


def sql_command(session, sc: C.SqlCommand, new) -> None:
    from stackyard.sparkconnect.sources import bind_sql
    if sc.HasField("input"):
        rel = sc.input.sql
        text = bind_sql(rel)
    else:
        text = bind_sql(R.SQL(query=sc.sql, args=sc.args, pos_args=sc.pos_args))
    from stackyard.sql.parser import parse
    from stackyard.sql.session import QUERIES
    stmts = parse(text, session.sql.dialect)
    r = new()
    result = r.sql_command_result.relation
    if len(stmts) == 1 and isinstance(stmts[0], QUERIES):
        result.sql.query = text             # a query runs when its rows are asked for
        return
    last = None
    for stmt in stmts:
        last = session.sql.execute(stmt, text)
    table = last.arrow() if last is not None else pa.table({})
    if table.column_names == ["result"] and table.num_rows == 1 and \
            table.column(0)[0].as_py() in ("OK",) or table.column_names == ["result"] and \
            str(table.column(0)[0].as_py()).startswith("using "):
        table = pa.table({})
    from stackyard.sparkconnect.udfs import ipc
    result.local_relation.data = ipc(table)


def create_view(session, v: C.CreateDataFrameViewCommand) -> None:
    from sqlglot import exp

    from stackyard.sql.types import hive_type
    planner = RelationPlanner(session)
    rel = planner.plan(v.input)
    schema = session.schema(rel)
    body = exp.select(*[exp.alias_(exp.column(c.internal, "v", quoted=True), c.name,
                                   quoted=True) for c in rel.cols]).from_(
        exp.Subquery(this=rel.query, alias=exp.TableAlias(this=exp.to_identifier("v"))))
    table = {"view": body, "columns": [{"name": f.name, "type": hive_type(f.type)}
                                       for f in schema],
             "partition_cols": [], "format": "view", "properties": {}, "stats": {},
             "location": ""}
    name = v.name.lower()
    if v.is_global:
        store = session.sql.global_tables
        name = name.split(".")[-1]
        table["view"] = _shared(session, body)
    else:
        store = session.sql.local_tables
    if name in store and not v.replace:
        raise ConnectError("TEMP_TABLE_OR_VIEW_ALREADY_EXISTS",
                           f"Cannot create the temporary view `{v.name}` because it already "
                           "exists.", "42P07")
    store[name] = dict(table, db="global_temp" if v.is_global else "", name=name)


def register_function(session, f) -> None:
    name = session.python_udf(f)
    udf = session.sql.udf.functions[name]
    session.sql.udf.functions[f.function_name.lower()] = type(udf)(
        f.function_name.lower(), udf.func, udf.return_type, udf.vectorized)


def _shared(session, body):
    """BODY with the session's own tables it reads copied to the server's
    global store, so another session can read the global view too."""
    import uuid

    from sqlglot import exp

    from stackyard.sql.catalog import LOCAL_DB

    def fix(node):
        if isinstance(node, exp.Table) and node.db == LOCAL_DB:
            table = session.sql.local_tables.get(node.name.lower())
            if table is None:
                return node
            if table.get("view") is not None:
                inner = _shared(session, table["view"].copy())
                table = dict(table, view=inner)
            gname = f"__g{uuid.uuid4().hex[:12]}"
            session.sql.global_tables[gname] = dict(table, db="global_temp", name=gname)
            out = node.copy()
            out.set("this", exp.to_identifier(gname, quoted=True))
            out.set("db", exp.to_identifier("global_temp"))
            return out
        return node
    return body.transform(fix)
