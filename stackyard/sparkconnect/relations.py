"""Spark Connect relations into queries of the SQL layer: each relation a
SELECT over its input's SELECT, which sqlglot's optimizer then merges,
pushes predicates through and prunes, so the SQL layer's planner sees what
it would for the same query written in SQL (one engine, not two)."""

from __future__ import annotations

from pyspark.sql.connect.proto import relations_pb2 as R
from sqlglot import exp

from stackyard.sparkconnect.errors import ConnectError
from stackyard.sparkconnect.expressions import Col, Scope, Translator
from stackyard.sparkconnect.names import name_of
from stackyard.sparkconnect.rel import (
    Aliases,
    Namer,
    Rel,
    passthrough,
    project,
    source,
    wrap_select,
)

J = R.Join.JoinType
_JOINS = {J.JOIN_TYPE_INNER: ("", "INNER"), J.JOIN_TYPE_FULL_OUTER: ("FULL", "OUTER"),
          J.JOIN_TYPE_LEFT_OUTER: ("LEFT", "OUTER"), J.JOIN_TYPE_RIGHT_OUTER: ("RIGHT", "OUTER"),
          J.JOIN_TYPE_LEFT_ANTI: ("", "ANTI"), J.JOIN_TYPE_LEFT_SEMI: ("", "SEMI"),
          J.JOIN_TYPE_CROSS: ("", "CROSS"), J.JOIN_TYPE_UNSPECIFIED: ("", "INNER")}


class RelationPlanner:
    def __init__(self, session):
        self.session = session
        self.alias = Aliases()

    def plan(self, r: R.Relation) -> Rel:
        hit = self.session.cached_rel(r)
        if hit is not None:
            return hit
        kind = r.WhichOneof("rel_type")
        method = getattr(self, "_" + (kind or "unknown"), None)
        if method is None:
            from stackyard.sparkconnect import extra
            method = getattr(extra, kind or "unknown", None)
            if method is None:
                raise ConnectError("UNSUPPORTED_FEATURE",
                                   f"The relation {kind} is not supported by Stackyard", "0A000")
            rel = method(self, getattr(r, kind))
        else:
            rel = method(getattr(r, kind))
        if r.HasField("common") and r.common.HasField("plan_id"):
            pid = r.common.plan_id
            rel.plan_ids = rel.plan_ids | {pid}
            rel.cols = [Col(c.name, c.internal, c.plan_ids | {pid}, c.qualifiers)
                        for c in rel.cols]
        return rel

    def child(self, r: R.Relation) -> tuple[Rel, Scope, exp.Expression]:
        rel = self.plan(r)
        src, sub = source(rel, self.alias())
        return rel, Scope([src], from_=sub), sub

    def tr(self, scope: Scope) -> Translator:
        return Translator(scope, self.session)

    # -- projection and filtering -------------------------------------------------------

    def _project(self, p: R.Project) -> Rel:
        if not p.HasField("input"):
            return self.session.constant_rel(self, p.expressions)
        _, scope, sub = self.child(p.input)
        items = self.select_items(scope, p.expressions)
        return project(sub, items)

    def select_items(self, scope: Scope, exprs, namer: Namer | None = None):
        namer = namer or Namer()
        tr = self.tr(scope)
        items = []
        for e in exprs:
            kind = e.WhichOneof("expr_type")
            if kind == "unresolved_star":
                items += self.star(scope, e.unresolved_star, namer)
                continue
            if kind == "unresolved_regex":
                items += self.regex(scope, e.unresolved_regex, namer)
                continue
            out = tr(e)
            if isinstance(out, exp.Tuple):          # a multi-name alias (posexplode)
                for a in out.expressions:
                    items.append((a.this, Col(a.alias, namer(a.alias))))
                continue
            name = out.alias if isinstance(out, exp.Alias) else name_of(e)
            if kind == "unresolved_extract_value" and not isinstance(out, exp.Alias) and \
                    isinstance(out, exp.Anonymous) and out.name == "struct_extract":
                name = name.replace("[", ".", 1).rstrip("]") if "[" in name else name
            inner = out.this if isinstance(out, exp.Alias) else out
            pids, quals = frozenset(), frozenset()
            if kind == "unresolved_attribute":
                _, col = scope.resolve(e.unresolved_attribute.unparsed_identifier,
                                       e.unresolved_attribute.plan_id
                                       if e.unresolved_attribute.HasField("plan_id") else None)
                pids, quals = col.plan_ids, col.qualifiers
            items.append((inner, Col(name, namer(name), pids, quals)))
        return items

    def star(self, scope: Scope, s, namer: Namer):
        target = s.unparsed_target[:-2] if s.HasField("unparsed_target") else ""
        pid = s.plan_id if s.HasField("plan_id") else None
        out = []
        for src, c in scope.all_cols():
            if pid is not None and pid not in src.plan_ids and pid not in c.plan_ids:
                continue
            if target and target.lower() not in {q.lower() for q in c.qualifiers}:
                if target.split(".")[0].lower() not in {c.name.lower()}:
                    continue
            out.append((exp.column(c.internal, src.alias, quoted=True),
                        Col(c.name, namer(c.name), c.plan_ids, c.qualifiers)))
        if target and not out:
            raise ConnectError("CANNOT_RESOLVE_STAR_EXPAND",
                               f"Cannot resolve `{target}`.* given input columns", "42704")
        return out

    def regex(self, scope: Scope, r, namer: Namer):
        import re
        pattern = r.col_name.strip("`")
        out = []
        for src, c in scope.all_cols():
            if re.fullmatch(pattern, c.name):
                out.append((exp.column(c.internal, src.alias, quoted=True),
                            Col(c.name, namer(c.name), c.plan_ids, c.qualifiers)))
        return out

    def _filter(self, f: R.Filter) -> Rel:
        rel, scope, sub = self.child(f.input)
        items = passthrough(scope.sources[0])
        out = project(sub, items, rel.plan_ids)
        out.query = out.query.where(self.tr(scope)(f.condition))
        return out

    def _with_columns(self, w: R.WithColumns) -> Rel:
        rel, scope, sub = self.child(w.input)
        tr = self.tr(scope)
        new = {}
        for a in w.aliases:
            new[a.name[0]] = tr(a.expr)
        namer = Namer()
        items = []
        src = scope.sources[0]
        for c in src.cols:
            if c.name in new:
                items.append((new.pop(c.name), Col(c.name, namer(c.name))))
            else:
                items.append((exp.column(c.internal, src.alias, quoted=True),
                              Col(c.name, namer(c.name), c.plan_ids, c.qualifiers)))
        for name, e in new.items():
            items.append((e, Col(name, namer(name))))
        return project(sub, items, rel.plan_ids)

    def _with_columns_renamed(self, w: R.WithColumnsRenamed) -> Rel:
        rel, scope, sub = self.child(w.input)
        renames = dict(w.rename_columns_map)
        renames.update({r.col_name: r.new_col_name for r in w.renames})
        namer, src = Namer(), scope.sources[0]
        items = [(exp.column(c.internal, src.alias, quoted=True),
                  Col(renames.get(c.name, c.name), namer(renames.get(c.name, c.name)),
                      c.plan_ids, c.qualifiers)) for c in src.cols]
        return project(sub, items, rel.plan_ids)

    def _to_df(self, t: R.ToDF) -> Rel:
        rel, scope, sub = self.child(t.input)
        src = scope.sources[0]
        if len(t.column_names) != len(src.cols):
            raise ConnectError("INVALID_COLUMN_NAME_AS_PATH" if False else "",
                               f"Number of column names ({len(t.column_names)}) does not "
                               f"match the number of columns ({len(src.cols)})", "42000")
        namer = Namer()
        items = [(exp.column(c.internal, src.alias, quoted=True), Col(n, namer(n)))
                 for c, n in zip(src.cols, t.column_names, strict=True)]
        return project(sub, items, rel.plan_ids)

    def _drop(self, d: R.Drop) -> Rel:
        rel, scope, sub = self.child(d.input)
        src = scope.sources[0]
        gone = set()
        for e in d.columns:
            if e.WhichOneof("expr_type") == "unresolved_attribute":
                try:
                    _, col = scope.resolve(e.unresolved_attribute.unparsed_identifier,
                                           e.unresolved_attribute.plan_id
                                           if e.unresolved_attribute.HasField("plan_id")
                                           else None)
                    gone.add(col.internal)
                except ConnectError:
                    pass
        names = {n.lower() for n in d.column_names}
        namer = Namer()
        items = [(exp.column(c.internal, src.alias, quoted=True),
                  Col(c.name, namer(c.name), c.plan_ids, c.qualifiers))
                 for c in src.cols if c.internal not in gone and c.name.lower() not in names]
        return project(sub, items, rel.plan_ids)

    def _subquery_alias(self, s: R.SubqueryAlias) -> Rel:
        rel, scope, sub = self.child(s.input)
        src = scope.sources[0]
        namer = Namer()
        items = [(exp.column(c.internal, src.alias, quoted=True),
                  Col(c.name, namer(c.name), c.plan_ids, frozenset({s.alias})))
                 for c in src.cols]
        return project(sub, items, rel.plan_ids)

    def _hint(self, h: R.Hint) -> Rel:
        rel = self.plan(h.input)
        if h.name.lower() in ("broadcast", "mapjoin", "broadcastjoin"):
            rel.extra["broadcast"] = True
        return rel

    def _repartition(self, r: R.Repartition) -> Rel:
        return self.plan(r.input)

    def _repartition_by_expression(self, r: R.RepartitionByExpression) -> Rel:
        return self.plan(r.input)

    # -- ordering and limits ------------------------------------------------------------

    def _sort(self, s: R.Sort) -> Rel:
        rel, src_sel = self._wrapped(s.input)
        src, sel = src_sel
        tr = self.tr(Scope([src]))
        sel = sel.order_by(*[tr._sort_order(o) for o in s.order])
        return Rel(sel, _same(rel), rel.plan_ids, sort_kept=True)

    def _wrapped(self, r: R.Relation):
        rel = self.plan(r)
        return rel, wrap_select(rel, self.alias())

    def _limit(self, lim: R.Limit) -> Rel:
        rel = self.plan(lim.input)
        q = rel.query
        if isinstance(q, exp.Select) and not q.args.get("limit") and not q.args.get("offset"):
            return Rel(q.limit(lim.limit), rel.cols, rel.plan_ids, rel.sort_kept)
        src, sel = wrap_select(rel, self.alias())
        return Rel(sel.limit(lim.limit), _same(rel), rel.plan_ids, rel.sort_kept)

    def _offset(self, o: R.Offset) -> Rel:
        rel = self.plan(o.input)
        src, sel = wrap_select(rel, self.alias())
        return Rel(sel.offset(o.offset), _same(rel), rel.plan_ids, rel.sort_kept)

    def _tail(self, t: R.Tail) -> Rel:
        rel = self.plan(t.input)
        table = self.session.collect(rel)
        n = t.limit
        return self.session.table_rel(table.slice(max(0, table.num_rows - n)), rel)

    def _deduplicate(self, d: R.Deduplicate) -> Rel:
        rel, scope, sub = self.child(d.input)
        src = scope.sources[0]
        if d.all_columns_as_keys or not d.column_names:
            items = passthrough(src)
            out = project(sub, items, rel.plan_ids)
            out.query = out.query.distinct()
            return out
        keys = []
        for n in d.column_names:
            keys.append(scope.resolve(n)[0])
        # Spark keeps the first row of each key: any one row, here
        namer = Namer()
        items = []
        for c in src.cols:
            ref = exp.column(c.internal, src.alias, quoted=True)
            is_key = any(k.name == c.internal for k in keys)
            items.append((ref if is_key else exp.func("first", ref, dialect="spark"),
                          Col(c.name, namer(c.name), c.plan_ids, c.qualifiers)))
        out = project(sub, items, rel.plan_ids)
        out.query = out.query.group_by(*keys)
        return out

    # -- joins and set operations --------------------------------------------------------

    def _join(self, j: R.Join) -> Rel:
        left = self.plan(j.left)
        right = self.plan(j.right)
        la, ra = self.alias(), self.alias()
        lsrc, lsub = source(left, la)
        rsrc, rsub = source(right, ra)
        scope = Scope([lsrc, rsrc])
        side, kind = _JOINS[j.join_type]
        namer = Namer()
        items = []
        cond = None
        if j.using_columns:
            using = list(j.using_columns)
            conds = []
            for name in using:
                lref, lc = Scope([lsrc]).resolve(name)
                rref, rc = Scope([rsrc]).resolve(name)
                conds.append(exp.EQ(this=lref, expression=rref))
                if side == "FULL":
                    key = exp.func("coalesce", lref, rref)
                elif side == "RIGHT":
                    key = rref
                else:
                    key = lref
                items.append((key, Col(lc.name, namer(lc.name), lc.plan_ids | rc.plan_ids,
                                       lc.qualifiers | rc.qualifiers)))
            cond = exp.and_(*conds) if conds else None
            skip = {n.lower() for n in using}
            for s in (lsrc, rsrc) if kind not in ("SEMI", "ANTI") else (lsrc,):
                for c in s.cols:
                    if c.name.lower() in skip:
                        continue
                    items.append((exp.column(c.internal, s.alias, quoted=True),
                                  Col(c.name, namer(c.name), c.plan_ids, c.qualifiers)))
        else:
            if j.HasField("join_condition"):
                cond = self.tr(scope)(j.join_condition)
            for s in (lsrc, rsrc) if kind not in ("SEMI", "ANTI") else (lsrc,):
                for c in s.cols:
                    items.append((exp.column(c.internal, s.alias, quoted=True),
                                  Col(c.name, namer(c.name), c.plan_ids, c.qualifiers)))
        if cond is None and kind == "INNER":
            kind = "CROSS"
        sel = exp.select(*[exp.alias_(e, c.internal, quoted=True) for e, c in items]).from_(lsub)
        join = exp.Join(this=rsub, on=cond if kind != "CROSS" else None,
                        side=side or None, kind=kind if kind in ("SEMI", "ANTI", "CROSS")
                        else None)
        sel.append("joins", join)
        return Rel(sel, [c for _, c in items], left.plan_ids | right.plan_ids)

    def _set_op(self, s: R.SetOperation) -> Rel:
        left = self.plan(s.left_input)
        right = self.plan(s.right_input)
        if s.by_name:
            right = self._by_name(left, right, s.allow_missing_columns)
            if s.allow_missing_columns:
                left = self._by_name(right, left, True, keep_order=True)
        if len(left.cols) != len(right.cols):
            raise ConnectError("NUM_COLUMNS_MISMATCH",
                               f"{_op_name(s)} can only be performed on inputs with the same "
                               f"number of columns, but the first input has {len(left.cols)} "
                               f"columns and the second input has {len(right.cols)} columns.",
                               "42826")
        namer = Namer()
        cols = [Col(c.name, namer(c.name), c.plan_ids, c.qualifiers) for c in left.cols]
        lq = _rename(left, cols, self.alias())
        rq = _rename(right, cols, self.alias())
        distinct = not s.is_all
        t = s.set_op_type
        if t == R.SetOperation.SET_OP_TYPE_UNION:
            q = exp.Union(this=lq, expression=rq, distinct=distinct)
        elif t == R.SetOperation.SET_OP_TYPE_INTERSECT:
            q = exp.Intersect(this=lq, expression=rq, distinct=distinct)
        else:
            q = exp.Except(this=lq, expression=rq, distinct=distinct)
        wrapped = exp.select(*[exp.column(c.internal, "u", quoted=True) for c in cols]).from_(
            exp.Subquery(this=q, alias=exp.TableAlias(this=exp.to_identifier("u"))))
        return Rel(wrapped, cols, left.plan_ids)

    def _by_name(self, like: Rel, rel: Rel, allow_missing: bool, keep_order=False) -> Rel:
        src, sub = source(rel, self.alias())
        have = {c.name.lower(): c for c in rel.cols}
        namer = Namer()
        items = []
        order = like.cols
        for c in order:
            mine = have.get(c.name.lower())
            if mine is None:
                if not allow_missing:
                    raise ConnectError("UNRESOLVED_COLUMN.WITH_SUGGESTION",
                                       f"A column with name `{c.name}` cannot be resolved",
                                       "42703")
                items.append((exp.Null(), Col(c.name, namer(c.name))))
            else:
                items.append((exp.column(mine.internal, src.alias, quoted=True),
                              Col(mine.name, namer(mine.name), mine.plan_ids)))
        if allow_missing:
            names = {c.name.lower() for c in order}
            for c in rel.cols:
                if c.name.lower() not in names:
                    items.append((exp.column(c.internal, src.alias, quoted=True),
                                  Col(c.name, namer(c.name), c.plan_ids)))
        return project(sub, items, rel.plan_ids)

    # -- aggregation ---------------------------------------------------------------------

    def _aggregate(self, a: R.Aggregate) -> Rel:
        from stackyard.sparkconnect.aggregate import aggregate
        return aggregate(self, a)

    # -- leaves --------------------------------------------------------------------------

    def _read(self, r: R.Read) -> Rel:
        from stackyard.sparkconnect.sources import read
        return read(self, r)

    def _local_relation(self, r: R.LocalRelation) -> Rel:
        from stackyard.sparkconnect.sources import local_relation
        return local_relation(self, r)

    def _cached_local_relation(self, r: R.CachedLocalRelation) -> Rel:
        from stackyard.sparkconnect.sources import cached_local_relation
        return cached_local_relation(self, r)

    def _range(self, r: R.Range) -> Rel:
        from stackyard.sparkconnect.sources import range_rel
        return range_rel(self, r)

    def _sql(self, s: R.SQL) -> Rel:
        from stackyard.sparkconnect.sources import sql_rel
        return sql_rel(self, s)


def _same(rel: Rel) -> list[Col]:
    return [Col(c.name, c.internal, c.plan_ids, c.qualifiers) for c in rel.cols]


def _rename(rel: Rel, cols: list[Col], alias: str) -> exp.Select:
    src, sub = source(rel, alias)
    return exp.select(*[exp.alias_(exp.column(mine.internal, alias, quoted=True), c.internal,
                                   quoted=True)
                        for mine, c in zip(rel.cols, cols, strict=True)]).from_(sub)


def _op_name(s: R.SetOperation) -> str:
    return {1: "INTERSECT", 2: "UNION", 3: "EXCEPT"}.get(s.set_op_type, "UNION")
