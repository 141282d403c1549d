"""Highlighting: the query's terms marked in a hit's stored text. The text
is analyzed again with offsets (Elasticsearch's unified highlighter does
the same when offsets are not indexed), split into fragments of about
fragment_size characters, and the fragments with the most matches kept."""

from __future__ import annotations

import fnmatch


def _values(src: dict, name: str) -> list[str]:
    node = [src]
    for part in name.split("."):
        nxt = []
        for n in node:
            if isinstance(n, dict) and part in n:
                v = n[part]
                nxt.extend(v if isinstance(v, list) else [v])
        node = nxt
    return [v for v in node if isinstance(v, str)]


def highlight(schema, query, src: dict, spec: dict) -> dict:
    pre = (spec.get("pre_tags") or ["<em>"])[0]
    post = (spec.get("post_tags") or ["</em>"])[0]
    wanted = spec.get("fields") or {}
    if isinstance(wanted, list):
        wanted = {k: v for d in wanted for k, v in d.items()}
    marked: dict[str, set[str]] = {}
    for field, term in query.terms():
        marked.setdefault(field, set()).add(term)
    out = {}
    for pattern, opts in wanted.items():
        opts = {**spec, **(opts or {})}
        names = [n for n in schema.mapping.fields if fnmatch.fnmatchcase(n, pattern)] \
            if "*" in pattern else [pattern]
        for name in names:
            terms = marked.get(name)
            if not terms and opts.get("require_field_match", True) is not False:
                continue
            terms = terms or {t for ts in marked.values() for t in ts}
            frags = []
            for text in _values(src, name):
                frags += _fragments(schema, name, text, terms, pre, post,
                                    int(opts.get("fragment_size", 100)),
                                    int(opts.get("number_of_fragments", 5)))
            if frags:
                out[name] = frags[:max(int(opts.get("number_of_fragments", 5)), 1)]
    return out


def _fragments(schema, name, text, terms, pre, post, size, count) -> list[str]:
    f = schema.get(name)
    analyzer = schema.index_analyzer(name) if f is not None and f.analyzed else None
    if analyzer is None:
        return [f"{pre}{text}{post}"] if text in terms else []
    t = analyzer(text, offsets=True)
    spans = [(s, e) for term, s, e in zip(t.terms, t.starts, t.ends, strict=True)
             if term in terms]
    if not spans:
        return []
    if count == 0 or len(text) <= size:
        return [_mark(text, spans, 0, len(text), pre, post)]
    pieces = []
    at = 0
    while at < len(text):
        end = min(len(text), at + size)
        if end < len(text):
            space = text.rfind(" ", at + size // 2, end)
            end = space if space > at else end
        inside = [(s, e) for s, e in spans if s >= at and e <= end]
        if inside:
            pieces.append((len(inside), at, end, inside))
        at = end + 1 if end < len(text) and text[end] == " " else end
    best = sorted(pieces, key=lambda p: -p[0])[:count]
    return [_mark(text, inside, a, b, pre, post).strip() for _, a, b, inside in best]


def _mark(text, spans, a, b, pre, post) -> str:
    out, at = [], a
    for s, e in spans:
        if s < a or e > b:
            continue
        out.append(text[at:s])
        out.append(pre + text[s:e] + post)
        at = e
    out.append(text[at:b])
    return "".join(out)
