"""PEP 249 (DB-API 2.0) over a SQL session, so tools that take a DB-API
connection work: `stackyard.sql.connect()` -> connection -> cursor."""

from __future__ import annotations

import datetime
import decimal

from stackyard.sql.errors import AnalysisError, ExecutionError, ParseError, SqlError

apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"

Error = SqlError
DatabaseError = SqlError
ProgrammingError = ParseError
OperationalError = ExecutionError
DataError = AnalysisError


class InterfaceError(SqlError):
    pass


class NotSupportedError(SqlError):
    pass


def connect(home=None, database: str = "default", client=None) -> Connection:
    if client is None:
        from stackyard.connect import connect as sy_connect
        client = sy_connect(home)
        own = True
    else:
        own = False
    return Connection(client, database, own)


def literal(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | float | decimal.Decimal):
        return repr(v) if not isinstance(v, decimal.Decimal) else str(v)
    if isinstance(v, datetime.datetime):
        return f"TIMESTAMP '{v.isoformat(sep=' ')}'"
    if isinstance(v, datetime.date):
        return f"DATE '{v.isoformat()}'"
    if isinstance(v, bytes):
        return "X'" + v.hex() + "'"
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


class Connection:
    def __init__(self, client, database: str, own: bool):
        from stackyard.sql.session import Session
        self.client, self._own = client, own
        self.session = Session(client, database)
        self.closed = False

    def cursor(self) -> Cursor:
        if self.closed:
            raise InterfaceError("connection is closed")
        return Cursor(self)

    def commit(self) -> None:
        """Every statement commits as it ends (Hive has no transactions)."""

    def rollback(self) -> None:
        raise NotSupportedError("rollback: statements commit as they end")

    def close(self) -> None:
        if not self.closed:
            self.session.close()
            if self._own:
                self.client.close()
            self.closed = True

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Cursor:
    arraysize = 1000

    def __init__(self, conn: Connection):
        self.conn = conn
        self.description = None
        self.rowcount = -1
        self._rows: list[tuple] = []
        self._at = 0

    def execute(self, operation: str, parameters=None) -> Cursor:
        if self.conn.closed:
            raise InterfaceError("connection is closed")
        result = self.conn.session.sql(operation, parameters)
        from stackyard.sql.types import hive_type
        self.description = [(f.name, hive_type(f.type), None, None, None, None, True)
                             for f in result.schema]
        self._rows = result.fetchall()
        self._at = 0
        self.rowcount = len(self._rows)
        return self

    def executemany(self, operation: str, seq) -> None:
        for params in seq:
            self.execute(operation, params)

    def fetchone(self):
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        n = size or self.arraysize
        out = self._rows[self._at:self._at + n]
        self._at += len(out)
        return out

    def fetchall(self) -> list[tuple]:
        out = self._rows[self._at:]
        self._at = len(self._rows)
        return out

    def __iter__(self):
        while (row := self.fetchone()) is not None:
            yield row

    def setinputsizes(self, sizes) -> None:
        pass

    def setoutputsize(self, size, column=None) -> None:
        pass

    def close(self) -> None:
        self._rows = []
