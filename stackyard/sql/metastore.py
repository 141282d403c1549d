"""The metastore (Hive's): databases, tables, partitions, views and their
statistics, kept in the coordination cell as Bigtable keeps its schemas in
Chubby. One node a database, a table under its database, a partition under
its table; every node holds JSON. Changes are compare-and-set on the node's
version, so concurrent DDL from several clients never loses an update.

    /stackyard/metastore/<db>                     {"name", "location", "comment"}
    /stackyard/metastore/<db>/<table>             the table (see `new_table`)
    /stackyard/metastore/<db>/<table>/<part>      {"values": {k: v}, "location"}

<part> is the partition's directory name ("k1=v1/k2=v2") with "/" quoted."""

from __future__ import annotations

import json
import posixpath
import time
from urllib.parse import quote, unquote

from stackyard.coord.tree import BadVersion, NodeExists, NoNode, NotEmpty
from stackyard.sql.errors import AnalysisError

ROOT = "/stackyard/metastore"
WAREHOUSE = "/user/hive/warehouse"
FORMATS = ("parquet", "textfile", "orc", "jsonfile", "csv", "hbase")   # hbase: the table store
RETRIES = 20


def partition_dir(values: dict) -> str:
    """Hive's directory name for partition VALUES, in column order."""
    return "/".join(f"{k}={quote(str(v), safe=' ')}" for k, v in values.items())


def parse_partition_dir(name: str) -> dict:
    out = {}
    for part in name.strip("/").split("/"):
        if "=" not in part:
            raise AnalysisError(f"not a partition directory: {name!r} (expected k=v)")
        k, v = part.split("=", 1)
        out[k] = unquote(v)
    return out


class Metastore:
    def __init__(self, coord):
        self.coord = coord
        self._ready = False

    # -- plumbing ---------------------------------------------------------------------

    def _ensure(self) -> None:
        if self._ready:
            return
        path = ""
        for part in ROOT.strip("/").split("/"):
            path += "/" + part
            try:
                self.coord.create(path, b"")
            except NodeExists:
                pass
        try:
            self.coord.create(f"{ROOT}/default", _dumps(
                {"name": "default", "location": WAREHOUSE, "comment": "default database"}))
        except NodeExists:
            pass
        self._ready = True

    def _get(self, path: str) -> tuple[dict, int]:
        self._ensure()
        data, stat = self.coord.get(path)
        return json.loads(data), stat["version"]

    def _update(self, path: str, change, missing: str) -> dict:
        """Apply CHANGE (dict -> dict) to PATH's JSON by compare-and-set."""
        for _ in range(RETRIES):
            try:
                value, version = self._get(path)
            except NoNode:
                raise AnalysisError(missing) from None
            new = change(dict(value))
            try:
                self.coord.set(path, _dumps(new), version=version)
                return new
            except BadVersion:
                continue
        raise AnalysisError(f"{path}: changed by others {RETRIES} times in a row; try again")

    # -- databases --------------------------------------------------------------------

    def databases(self) -> list[str]:
        self._ensure()
        return sorted(self.coord.children(ROOT))

    def database(self, name: str) -> dict:
        try:
            return self._get(f"{ROOT}/{_name(name)}")[0]
        except NoNode:
            raise AnalysisError(f"Database '{name}' not found") from None

    def create_database(self, name: str, location: str | None = None, comment: str = "",
                        if_not_exists: bool = False) -> bool:
        self._ensure()
        name = _name(name)
        location = location or posixpath.join(WAREHOUSE, f"{name}.db")
        try:
            self.coord.create(f"{ROOT}/{name}", _dumps(
                {"name": name, "location": location, "comment": comment}))
            return True
        except NodeExists:
            if if_not_exists:
                return False
            raise AnalysisError(f"Database '{name}' already exists") from None

    def drop_database(self, name: str, if_exists: bool = False, cascade: bool = False) -> dict | None:
        self._ensure()
        name = _name(name)
        if name == "default":
            raise AnalysisError("Can not drop default database")
        path = f"{ROOT}/{name}"
        try:
            db = self._get(path)[0]
            tables = self.coord.children(path)
            if tables and not cascade:
                raise AnalysisError(f"Database '{name}' is not empty; "
                                    "use DROP DATABASE ... CASCADE")
            for t in tables:
                self._delete_tree(f"{path}/{t}")
            self.coord.delete(path)
            return db
        except NoNode:
            if if_exists:
                return None
            raise AnalysisError(f"Database '{name}' not found") from None
        except NotEmpty:
            raise AnalysisError(f"Database '{name}' gained a table while being dropped") from None

    # -- tables -----------------------------------------------------------------------

    def tables(self, db: str) -> list[str]:
        self.database(db)
        return sorted(self.coord.children(f"{ROOT}/{_name(db)}"))

    def table(self, db: str, name: str) -> dict | None:
        try:
            return self._get(f"{ROOT}/{_name(db)}/{_name(name)}")[0]
        except NoNode:
            return None

    def create_table(self, table: dict, if_not_exists: bool = False) -> bool:
        db, name = table["db"], table["name"]
        self.database(db)
        try:
            self.coord.create(f"{ROOT}/{db}/{name}", _dumps(table))
            return True
        except NodeExists:
            if if_not_exists:
                return False
            raise AnalysisError(f"Table {db}.{name} already exists") from None
        except NoNode:
            raise AnalysisError(f"Database '{db}' not found") from None

    def alter_table(self, db: str, name: str, change) -> dict:
        return self._update(f"{ROOT}/{_name(db)}/{_name(name)}", change,
                            f"Table or view not found: {db}.{name}")

    def drop_table(self, db: str, name: str) -> dict | None:
        path = f"{ROOT}/{_name(db)}/{_name(name)}"
        try:
            table = self._get(path)[0]
        except NoNode:
            return None
        self._delete_tree(path)
        return table

    def rename_table(self, db: str, name: str, new_db: str, new_name: str,
                     location: str | None) -> None:
        """One multi: the new table and its partitions created, the old deleted."""
        from stackyard.coord.tree import Create, Delete
        old = f"{ROOT}/{_name(db)}/{_name(name)}"
        table, version = self._get(old)
        parts = {p: self._get(f"{old}/{p}")[0] for p in self.coord.children(old)}
        table = {**table, "db": new_db, "name": new_name}
        if location:
            table["location"] = location
            for p, spec in parts.items():
                spec["location"] = posixpath.join(location, unquote(p))
        new = f"{ROOT}/{_name(new_db)}/{_name(new_name)}"
        ops = [Create(new, _dumps(table))]
        ops += [Create(f"{new}/{p}", _dumps(spec)) for p, spec in parts.items()]
        ops += [Delete(f"{old}/{p}") for p in parts]
        ops.append(Delete(old, version))
        try:
            self.coord.multi(ops)
        except NodeExists:
            raise AnalysisError(f"Table {new_db}.{new_name} already exists") from None
        except (NoNode, BadVersion, NotEmpty):
            raise AnalysisError(f"Table {db}.{name} changed while being renamed; "
                                "try again") from None

    # -- partitions -------------------------------------------------------------------

    def partitions(self, db: str, name: str) -> list[dict]:
        path = f"{ROOT}/{_name(db)}/{_name(name)}"
        try:
            names = self.coord.children(path)
        except NoNode:
            raise AnalysisError(f"Table or view not found: {db}.{name}") from None
        out = []
        for p in sorted(names):
            try:
                out.append(self._get(f"{path}/{p}")[0])
            except NoNode:
                continue           # dropped while we listed
        return out

    def add_partition(self, db: str, name: str, values: dict, location: str,
                      if_not_exists: bool = True) -> bool:
        path = _partition_path(db, name, values)
        try:
            self.coord.create(path, _dumps({"values": values, "location": location,
                                            "created": time.time()}))
            return True
        except NodeExists:
            if if_not_exists:
                return False
            raise AnalysisError(f"Partition {partition_dir(values)} already exists") from None
        except NoNode:
            raise AnalysisError(f"Table or view not found: {db}.{name}") from None

    def drop_partition(self, db: str, name: str, values: dict) -> dict | None:
        path = _partition_path(db, name, values)
        try:
            spec = self._get(path)[0]
            self.coord.delete(path)
            return spec
        except NoNode:
            return None

    def _delete_tree(self, path: str) -> None:
        try:
            for c in self.coord.children(path):
                self._delete_tree(f"{path}/{c}")
            self.coord.delete(path)
        except NoNode:
            pass


def new_table(db: str, name: str, columns: list[dict], *, partition_cols=(), fmt="parquet",
              location: str, external: bool = False, properties: dict | None = None,
              delimiter: str = "\x01", view: str | None = None, owner: str = "") -> dict:
    return {"db": db, "name": name, "columns": columns, "partition_cols": list(partition_cols),
            "format": fmt, "location": location, "external": external,
            "properties": dict(properties or {}), "delimiter": delimiter, "view": view,
            "owner": owner, "created": time.time(), "stats": {}}


def _partition_path(db: str, name: str, values: dict) -> str:
    return f"{ROOT}/{_name(db)}/{_name(name)}/{quote(partition_dir(values), safe='=')}"


def _name(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise AnalysisError(f"invalid name {name!r}")
    return name.lower()


def _dumps(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True).encode()
