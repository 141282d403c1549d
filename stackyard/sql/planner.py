"""From a query, optimized and qualified by sqlglot (our logical plan: its
rules push predicates and projections down, decorrelate subqueries into
joins and fold constants), to the distributed physical plan.

Per SELECT block: each source becomes a scan (its columns pruned, its
single-table predicates pushed into the reader, its partitions pruned) or
the plan of its CTE / derived table; the inner joins are ordered greedily by
estimated size, each joined by broadcast when one side is under the
broadcast threshold (Spark's spark.sql.autoBroadcastJoinThreshold) and by a
shuffle hash join otherwise; the rest of the block (aggregation, windows,
DISTINCT, ORDER BY, LIMIT) is planned by `tail`."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from stackyard.sql import tail
from stackyard.sql.errors import AnalysisError
from stackyard.sql.names import aliases, conjoin, conjuncts, flat, flat_name, plain, q, sql
from stackyard.sql.physical import (
    SUBQUERIES,
    Cached,
    PNode,
    Scan,
    Union,
    exchange,
    fragment,
)


@dataclass
class Conf:
    shuffle_partitions: int = 4
    broadcast_threshold: int = 10 << 20      # bytes; -1 disables broadcast joins
    selectivity: float = 0.5                 # a pushed conjunct's guessed selectivity


@dataclass(eq=False)
class Values(PNode):
    """Rows the driver already has (SELECT without FROM, VALUES)."""
    table: pa.Table | None = None

    @classmethod
    def of(cls, table: pa.Table) -> Values:
        return cls(table.schema, 1, table.num_rows, table.nbytes, "LocalTableScan", table=table)


class Planner:
    def __init__(self, catalog, conf: Conf):
        self.catalog, self.conf = catalog, conf
        self.ctes: dict[str, exp.Expression] = {}
        self.cte_plans: dict[str, PNode] = {}

    # -- queries ------------------------------------------------------------------------

    def plan(self, query: exp.Expression) -> PNode:
        with_ = query.args.get("with") or query.args.get("with_")
        if with_ is not None:
            for cte in with_.expressions:
                self.ctes[cte.alias_or_name] = cte.this
        if isinstance(query, exp.Subquery):
            return self.plan(query.this)
        if isinstance(query, exp.SetOperation):
            return self.set_operation(query)
        if isinstance(query, exp.Select):
            return self.select(query)
        if isinstance(query, exp.Values):
            return Values.of(self.catalog.values_table(query))
        raise AnalysisError(f"unsupported query: {query.key.upper()}")

    def set_operation(self, query: exp.SetOperation) -> PNode:
        left, right = self.plan(query.left), self.plan(query.right)
        if len(left.names) != len(right.names):
            raise AnalysisError(f"{query.key.upper()} can only be performed on inputs with "
                                f"the same number of columns, but the first has "
                                f"{len(left.names)} and the second {len(right.names)}")
        cols = ", ".join(f"{q(r)} AS {q(name)}" for r, name in zip(right.names, left.names,
                                                                   strict=True))
        right = fragment("Project", f"SELECT {cols} FROM __in", [("__in", right)])
        distinct = query.args.get("distinct", True)
        n = self.conf.shuffle_partitions
        if isinstance(query, exp.Union):
            u = Union(left.schema, left.partitions + right.partitions, left.rows + right.rows,
                      left.bytes + right.bytes, "Union", inputs=[left, right])
            out = tail.distinct(u, n) if distinct else u
        else:
            keys = tuple(left.names)
            op = "INTERSECT" if isinstance(query, exp.Intersect) else "EXCEPT"
            op += "" if distinct else " ALL"
            out = fragment(op.title(), f"SELECT * FROM __l {op} SELECT * FROM __r",
                           [("__l", exchange(left, keys, n)), ("__r", exchange(right, keys, n))])
        return tail.order_limit(out, query, n)

    # -- one SELECT block ---------------------------------------------------------------

    def select(self, sel: exp.Select) -> PNode:
        from_ = sel.args.get("from") or sel.args.get("from_")
        if from_ is None:
            return Values.of(self.catalog.constant_select(sel))
        self.subqueries(sel)
        joins = list(sel.args.get("joins") or [])
        sources = [from_.this] + [j.this for j in joins]
        names = [s.alias_or_name for s in sources]
        needed: dict[str, set[str]] = {n: set() for n in names}
        for col in sel.find_all(exp.Column):
            if col.table in needed:
                needed[col.table].add(col.name)
        where = conjuncts((sel.args.get("where") or exp.Where()).this)
        run, later = [names[0]], []
        pool = []
        for j, name in zip(joins, names[1:], strict=True):
            kind = join_kind(j)
            if kind in ("inner", "cross") and not later:
                run.append(name)
                pool += conjuncts(j.args.get("on"))
            else:
                later.append((name, kind, conjuncts(j.args.get("on"))))
                if j.args.get("using"):
                    raise AnalysisError("JOIN ... USING is not supported after qualification")
        # WHERE may filter below the joins unless a later join null-extends the run
        pushable = all(k in ("left", "semi", "anti", "inner", "cross") for _, k, _ in later)
        top = []
        for c in where:
            if pushable and aliases(c) and aliases(c) <= set(run):
                pool.append(c)
            else:
                top.append(c)
        pushed = {n: [c for c in pool if aliases(c) == {n}] for n in run}
        pool = [c for c in pool if len(aliases(c)) != 1]
        for name, kind, on in later:
            pushed[name] = [c for c in on if aliases(c) == {name}] if kind != "full" else []
        rels = {}
        for src, name in zip(sources, names, strict=True):
            rels[name] = self.source(src, name, sorted(needed[name]), pushed.get(name, []))
        for name, _kind, on in later:
            on[:] = [c for c in on if c not in pushed[name]]
        node, have = self.inner_joins(rels, run, pool)
        for name, kind, on in later:
            node = self.join(node, rels[name], kind, on, have, {name})
            have.add(name)
        residual = conjoin(top + [c for c in pool if not aliases(c) <= have])
        return tail.block(sel, node, residual, self.conf.shuffle_partitions)

    def subqueries(self, sel: exp.Select) -> None:
        """Subqueries sqlglot left in expressions (NOT IN, a scalar it could
        not join): planned on their own and read by the fragments that need
        them as broadcast tables; correlated ones are refused."""
        subs = [s for s in sel.find_all(exp.Subquery)
                if not isinstance(s.parent, exp.From | exp.Join)]
        if not subs:
            return
        registry = SUBQUERIES.get()
        if registry is None:
            registry = {}
            SUBQUERIES.set(registry)
        for sub in subs:
            inner = {t.alias_or_name for t in sub.find_all(exp.Table)} | \
                {s.alias_or_name for s in sub.find_all(exp.Subquery)} | set(self.ctes)
            outer = {c.table for c in sub.find_all(exp.Column) if c.table} - inner
            if outer:
                raise AnalysisError("this subquery could not be turned into a join (it is "
                                    f"correlated with {', '.join(sorted(outer))} in a way not "
                                    f"supported): {sub.sql(dialect='spark')[:80]}")
            p = Planner(self.catalog, self.conf)
            p.ctes, p.cte_plans = self.ctes, self.cte_plans
            node = p.plan(sub.this)
            name = f"__sq{len(registry)}"
            registry[name] = node
            sub.replace(exp.Subquery(this=exp.select("*").from_(
                exp.Table(this=exp.to_identifier(name, quoted=True)))))

    def source(self, src: exp.Expression, name: str, columns: list[str],
               conds: list[exp.Expression]) -> PNode:
        if isinstance(src, exp.Subquery) or (isinstance(src, exp.Table)
                                             and not src.db and src.name in self.ctes):
            if isinstance(src, exp.Subquery):
                node = Planner(self.catalog, self.conf)
                node.ctes = dict(self.ctes)
                inner = node.plan(src.this)
            else:
                if src.name not in self.cte_plans:
                    self.cte_plans[src.name] = self.plan(self.ctes[src.name])
                inner = self.cte_plans[src.name]
            cols = columns or inner.names[:1]
            missing = [c for c in cols if c not in inner.names]
            if missing:
                raise AnalysisError(f"column {missing[0]!r} is not in {name}")
            return self._over(inner, name, cols, conds, inner.rows)
        if isinstance(src, exp.Values):
            rows = self.catalog.values_table(src)
            return self._rows(rows, src, name, columns or rows.column_names[:1], conds)
        if not isinstance(src, exp.Table):
            raise AnalysisError(f"unsupported FROM item: {src.sql()[:80]}")
        table, partitions = self.catalog.resolve(src)
        if table.get("view"):
            raise AnalysisError(f"view {src.sql()} should have been expanded")
        all_cols = [c["name"] for c in table["columns"]]
        cols = columns or all_cols[:1]
        for c in cols:
            if c not in all_cols:
                raise AnalysisError(f"column {c!r} is not in table {src.sql()}")
        if table.get("memory") is not None:
            return self._rows(table["memory"].select(cols), src, name, cols, conds)
        if table.get("cached") is not None:
            return self._cached(table["cached"], name, cols, conds)
        scan = self.catalog.scan(table, partitions, cols, [plain(c) for c in conds])
        if not scan.splits:
            empty = pa.schema([(c, Scan.of(src.name, scan).schema.field(c).type) for c in cols])
            leaf: PNode = Values.of(empty.empty_table())
            leaf.label = f"Scan {table['format']} {src.sql()} (no files)"
        else:
            leaf = Scan.of(src.sql(), scan)
        sel_factor = self.conf.selectivity ** len(conds)
        out = self._over(leaf, name, cols, conds, leaf.rows,
                         "Filter/Project" if conds else "Project")
        out.bytes = leaf.bytes * sel_factor
        out.ndv = {flat_name(name, c): min(scan.distinct(c), max(1.0, out.rows)) for c in cols}
        return out

    def _over(self, leaf: PNode, name: str, cols: list[str], conds, rows: float,
              label: str = "Project") -> PNode:
        """LEAF's COLS under the source's flat names, filtered by CONDS."""
        proj = ", ".join(f"{q(c)} AS {q(flat_name(name, c))}" for c in cols)
        where = conjoin([plain(c) for c in conds])
        text = f"SELECT {proj} FROM __in" + (f" WHERE {sql(where)}" if where else "")
        return fragment(f"{label} {name}", text, [("__in", leaf)],
                        rows=rows * self.conf.selectivity ** len(conds))

    def _rows(self, rows: pa.Table, src, name: str, cols: list[str], conds) -> PNode:
        """A source whose rows the session holds (a front end's local data)."""
        leaf: PNode = Values.of(rows)
        leaf.label = f"LocalTableScan {name} ({rows.num_rows} rows)"
        return self._over(leaf, name, cols, conds, rows.num_rows)

    def _cached(self, c, name: str, cols: list[str], conds) -> PNode:
        leaf = Cached(c["schema"], c["partitions"], c["rows"], c["bytes"],
                      f"InMemoryTableScan {name}", node=c["node"])
        return self._over(leaf, name, cols, conds, c["rows"])

    # -- joins --------------------------------------------------------------------------

    def inner_joins(self, rels: dict[str, PNode], run: list[str], pool: list[exp.Expression]
                    ) -> tuple[PNode, set[str]]:
        """The run's sources joined greedily: start from the largest, then join
        the smallest source an equality connects to what is joined so far."""
        start = max(run, key=lambda n: rels[n].bytes)
        node, have = rels[start], {start}
        left = [n for n in run if n != start]
        ndv: dict[str, float] = {}
        for n in run:
            ndv.update(rels[n].ndv or {})
        rows = rels[start].rows
        while left:
            def joined_rows(n: str, rows: float = rows) -> float | None:
                """Rows after joining N: |L| * |R| / max(ndv of the keys), the
                textbook estimate, over N's most selective equality."""
                best = None
                for c in pool:
                    side = _equi_between(c, have, {n})
                    if side is None:
                        continue
                    d = max(_ndv(side[0], ndv, rows), _ndv(side[1], ndv, rels[n].rows))
                    est = rows * rels[n].rows / max(1.0, d)
                    best = est if best is None else min(best, est)
                return best
            estimates = {n: joined_rows(n) for n in left}
            candidates = [n for n in left if estimates[n] is not None]
            if candidates:
                pick = min(candidates, key=lambda n: (estimates[n], rels[n].bytes))
                rows = max(1.0, estimates[pick])
            else:
                pick = min(left, key=lambda n: rels[n].bytes)
                rows = rows * max(1.0, rels[pick].rows)
            conds = [c for c in pool if aliases(c) <= have | {pick} and pick in aliases(c)]
            for c in conds:
                pool.remove(c)
            node = self.join(node, rels[pick], "inner" if conds else "cross", conds, have, {pick})
            have.add(pick)
            left.remove(pick)
        return node, have

    def join(self, left: PNode, right: PNode, kind: str, conds: list[exp.Expression],
             lnames: set[str], rnames: set[str]) -> PNode:
        lkeys, rkeys, rest = [], [], []
        for c in conds:
            side = _equi_between(c, lnames, rnames)
            if side is None:
                rest.append(c)
            else:
                lkeys.append(flat(side[0]))
                rkeys.append(flat(side[1]))
        on = conjoin([flat(c) for c in conds])
        kw = {"inner": "JOIN", "cross": "CROSS JOIN", "left": "LEFT JOIN",
              "right": "RIGHT JOIN", "full": "FULL JOIN", "semi": "SEMI JOIN",
              "anti": "ANTI JOIN"}[kind if on is not None or kind != "inner" else "cross"]
        if on is None and kind not in ("inner", "cross"):
            on = exp.true()
        text = f"SELECT * FROM __l {kw} __r" + (f" ON {sql(on)}" if on is not None
                                                and kw != "CROSS JOIN" else "")
        rows = {"inner": max(left.rows, right.rows), "left": left.rows,
                "semi": left.rows, "anti": left.rows, "right": right.rows,
                "full": left.rows + right.rows}.get(kind, left.rows * max(1.0, right.rows))
        threshold = self.conf.broadcast_threshold
        small_r, small_l = 0 <= right.bytes <= threshold, 0 <= left.bytes <= threshold
        if kind in ("inner", "cross", "left", "semi", "anti") and (small_r or not lkeys):
            why = "no equality to hash on" if not lkeys else \
                f"right side ~{int(right.bytes):,} bytes <= threshold {threshold:,}"
            return fragment(f"BroadcastHashJoin {kind} ({why})", text, [("__l", left)],
                            [("__r", right)], rows=rows)
        if kind in ("inner", "right") and small_l and lkeys:
            why = f"left side ~{int(left.bytes):,} bytes <= threshold {threshold:,}"
            return fragment(f"BroadcastHashJoin {kind}, build left ({why})", text,
                            [("__r", right)], [("__l", left)], rows=rows)
        n = self.conf.shuffle_partitions if lkeys else 1
        left, lk = _with_keys(left, lkeys)
        right, rk = _with_keys(right, rkeys)
        why = f"both sides over the broadcast threshold {threshold:,}" if lkeys else \
            "no equality to hash on"
        return fragment(f"ShuffledHashJoin {kind} ({why})", text,
                        [("__l", exchange(left, lk, n)), ("__r", exchange(right, rk, n))],
                        rows=rows, hash_keys=tuple(lk) if lkeys else None)


def join_kind(j: exp.Join) -> str:
    side = (j.args.get("side") or "").lower()
    kind = (j.args.get("kind") or "").lower()
    if kind in ("semi", "anti"):
        return kind
    if side in ("left", "right", "full"):
        return side
    if kind == "cross" or (not j.args.get("on") and not j.args.get("using")):
        return "cross"
    return "inner"


def _equi_between(c: exp.Expression, a: set[str], b: set[str]):
    """(side of A, side of B) if C is an equality between them, else None."""
    if not isinstance(c, exp.EQ):
        return None
    la, ra = aliases(c.this), aliases(c.expression)
    if la and ra and la <= a and ra <= b:
        return c.this, c.expression
    if la and ra and la <= b and ra <= a:
        return c.expression, c.this
    return None


def _ndv(e: exp.Expression, ndv: dict[str, float], rows: float) -> float:
    if isinstance(e, exp.Column) and e.table:
        return min(ndv.get(flat_name(e.table, e.name), rows), max(1.0, rows))
    return max(1.0, rows)


def _with_keys(node: PNode, keys: list[exp.Expression]) -> tuple[PNode, list[str]]:
    """NODE with its join keys as columns (computed ones added) and their names."""
    names, extra = [], []
    for i, k in enumerate(keys):
        if isinstance(k, exp.Column) and not k.table and k.name in node.names:
            names.append(k.name)
        else:
            name = f"__jk{node.id}_{i}"
            extra.append(f"{sql(k)} AS {q(name)}")
            names.append(name)
    if extra:
        node = fragment("Project join keys", f"SELECT *, {', '.join(extra)} FROM __in",
                        [("__in", node)])
    return node, names
