"""An index's schema: its mapping, its analyzers and its similarity, and
the questions queries ask of them (which analyzer a field searches with,
which fields a pattern names)."""

from __future__ import annotations

import fnmatch

from stackyard.search import similarity
from stackyard.search.analysis import Registry
from stackyard.search.mapping import Field, Mapping


class Schema:
    def __init__(self, mappings: dict | None = None, settings: dict | None = None):
        self.settings = settings or {}
        index = self.settings.get("index", self.settings)
        self.registry = Registry(index.get("analysis"))
        self.mapping = Mapping(mappings)
        sim = (index.get("similarity") or {}).get("default")
        self.similarity = similarity.make(sim)
        for f in self.mapping.fields.values():     # a bad analyzer fails the create
            if f.analyzed:
                self.registry.get(f.analyzer)
                if f.search_analyzer:
                    self.registry.get(f.search_analyzer)

    def get(self, name: str) -> Field | None:
        return self.mapping.fields.get(name)

    def index_analyzer(self, name: str):
        f = self.mapping.fields.get(name)
        return self.registry.get(f.analyzer if f is not None else "standard")

    def analyze(self, name: str, text: str, analyzer: str | None = None):
        if analyzer:
            return self.registry.get(analyzer)(text)
        f = self.mapping.fields.get(name)
        which = (f.search_analyzer or f.analyzer) if f is not None and f.analyzed else "standard"
        return self.registry.get(which)(text)

    def expand(self, pattern: str) -> list[str]:
        if "*" not in pattern:
            return [pattern]
        return [n for n, f in sorted(self.mapping.fields.items())
                if fnmatch.fnmatchcase(n, pattern) and f.type in ("text", "keyword",
                                                                  "match_only_text")
                and not (pattern == "*" and "." in n and n.rsplit(".", 1)[0] in
                         self.mapping.fields)]
