"""Errors as a Spark Connect client reads them: a gRPC status carrying a
google.rpc.ErrorInfo whose reason is the JVM exception class PySpark maps to
its own (AnalysisException, ParseException, ...), with the error class,
SQLSTATE and message parameters in its metadata, and an error id the client
passes to FetchErrorDetails for the server-side cause."""

from __future__ import annotations

import json
import re
import traceback
import uuid

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ANALYSIS = "org.apache.spark.sql.AnalysisException"
PARSE = "org.apache.spark.sql.catalyst.parser.ParseException"
RUNTIME = "org.apache.spark.SparkRuntimeException"
ILLEGAL = "java.lang.IllegalArgumentException"
UNSUPPORTED = "java.lang.UnsupportedOperationException"
ARITHMETIC = "java.lang.ArithmeticException"
PYTHON = "org.apache.spark.api.python.PythonException"

_HIERARCHY = {
    ANALYSIS: [ANALYSIS, "org.apache.spark.sql.catalyst.ExtendedAnalysisException",
               "java.lang.Exception", "java.lang.Throwable"],
    PARSE: [PARSE, ANALYSIS, "java.lang.Exception", "java.lang.Throwable"],
}


class ConnectError(Exception):
    """An error with Spark's error class (TABLE_OR_VIEW_NOT_FOUND, ...)."""

    def __init__(self, error_class: str, message: str, sql_state: str = "",
                 kind: str = ANALYSIS, params: dict | None = None):
        super().__init__(message)
        self.error_class, self.message, self.sql_state = error_class, message, sql_state
        self.kind = kind
        self.params = params or {}

    def text(self) -> str:
        return f"[{self.error_class}] {self.message}" if self.error_class else self.message


def from_exception(e: BaseException) -> ConnectError:
    """E as Spark would have reported it."""
    from stackyard.errors import ClusterUnavailable
    from stackyard.sql.errors import AnalysisError, ParseError, SqlError
    if isinstance(e, ConnectError):
        return e
    if isinstance(e, ParseError):
        return ConnectError("PARSE_SYNTAX_ERROR", str(e), "42601", PARSE)
    if isinstance(e, AnalysisError):
        msg = str(e)
        m = re.search(r"Table or view not found: (\S+)", msg)
        if m:
            return ConnectError("TABLE_OR_VIEW_NOT_FOUND",
                                f"The table or view `{m.group(1).rstrip(';,')}` cannot be "
                                "found. Verify the spelling and correctness of the schema and "
                                f"catalog. ({msg})", "42P01",
                                params={"relationName": f"`{m.group(1)}`"})
        m = re.search(r"Column '([^']+)' does not exist", msg)
        if m:
            return ConnectError("UNRESOLVED_COLUMN.WITHOUT_SUGGESTION",
                                f"A column, variable, or function parameter with name "
                                f"`{m.group(1)}` cannot be resolved. ({msg})", "42703",
                                params={"objectName": f"`{m.group(1)}`"})
        if "already exists" in msg:
            cls = "SCHEMA_ALREADY_EXISTS" if "Database" in msg else \
                "TABLE_OR_VIEW_ALREADY_EXISTS"
            return ConnectError(cls, msg, "42P07" if "Table" in msg else "42P06")
        if re.search(r"Database '[^']+' not found", msg):
            return ConnectError("SCHEMA_NOT_FOUND", msg, "42704")
        return ConnectError("", msg, "42000")
    if isinstance(e, SqlError):
        return ConnectError("", str(e), "42000")
    if isinstance(e, ClusterUnavailable):
        return ConnectError("", f"the Stackyard cluster is unavailable: {e}", "08000", RUNTIME)
    if isinstance(e, ZeroDivisionError):
        return ConnectError("DIVIDE_BY_ZERO", str(e), "22012", ARITHMETIC)
    if isinstance(e, NotImplementedError):
        return ConnectError("UNSUPPORTED_FEATURE", str(e) or "not supported", "0A000",
                            UNSUPPORTED)
    if isinstance(e, ValueError | TypeError | KeyError):
        return ConnectError("", f"{type(e).__name__}: {e}", "", ILLEGAL)
    return ConnectError("", f"{type(e).__name__}: {e}", "", RUNTIME)


class ErrorStore:
    """Recent errors by id, for FetchErrorDetails (bounded: the newest 256)."""

    def __init__(self, keep: int = 256):
        self.keep = keep
        self.errors: dict[str, tuple[ConnectError, str]] = {}

    def add(self, err: ConnectError, cause: BaseException) -> str:
        eid = str(uuid.uuid4())
        stack = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
        self.errors[eid] = (err, stack[-8000:])
        while len(self.errors) > self.keep:
            self.errors.pop(next(iter(self.errors)))
        return eid

    def details(self, eid: str):
        from pyspark.sql.connect.proto import base_pb2 as B
        out = B.FetchErrorDetailsResponse()
        got = self.errors.get(eid)
        if got is None:
            return out
        err, stack = got
        e = out.errors.add()
        e.error_type_hierarchy.extend(_HIERARCHY.get(err.kind, [err.kind, "java.lang.Throwable"]))
        e.message = err.text()
        if err.error_class:
            e.spark_throwable.error_class = err.error_class
        for k, v in err.params.items():
            e.spark_throwable.message_parameters[k] = v
        if err.sql_state:
            e.spark_throwable.sql_state = err.sql_state
        cause = out.errors.add()
        cause.error_type_hierarchy.extend(["org.apache.spark.api.python.PythonException",
                                           "java.lang.Throwable"])
        cause.message = "server-side cause:\n" + stack
        e.cause_idx = 1
        out.root_error_idx = 0
        return out


def abort(context: grpc.ServicerContext, err: ConnectError, error_id: str = "",
          code=code_pb2.INTERNAL) -> None:
    info = error_details_pb2.ErrorInfo(reason=err.kind, domain="org.apache.spark")
    info.metadata["classes"] = json.dumps(_HIERARCHY.get(err.kind, [err.kind]))
    if err.error_class:
        info.metadata["errorClass"] = err.error_class
    if err.sql_state:
        info.metadata["sqlState"] = err.sql_state
    info.metadata["messageParameters"] = json.dumps(err.params)
    if error_id:
        info.metadata["errorId"] = error_id
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code, message=err.text()[:16000], details=[detail])
    context.abort_with_status(rpc_status.to_status(status))
