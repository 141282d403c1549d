"""`yard search`: query, index, get and stats against the cluster's search
servers, through their Elasticsearch REST API."""

from __future__ import annotations

import json

import click

from stackyard.cli.common import EXPECTED, exit_with

BATCH = 2000


@click.group("search")
def search() -> None:
    """Full-text search: query an index, load documents into one, see its shape."""


def _client(home):
    from stackyard.cluster.home import Home
    from stackyard.search.client import SearchClient
    h = Home.at(home)
    if not h.read_state():
        from stackyard.errors import ClusterUnavailable
        raise ClusterUnavailable(f"no cluster is running under {h.root} (start one with "
                                 "`yard cluster up`)")
    return SearchClient.for_home(h)


def _guard(verb: str, fn) -> None:
    from stackyard.errors import describe
    from stackyard.search.client import SearchError
    try:
        exit_with(fn() or 0)
    except SearchError as exc:
        click.echo(f"search {verb}: {exc.reason} ({exc.kind})", err=True)
        exit_with(1)
    except EXPECTED as exc:
        click.echo(f"search {verb}: {describe(exc)}", err=True)
        exit_with(1)


@search.command("query")
@click.argument("index")
@click.argument("text")
@click.option("--size", "-n", default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print Elasticsearch's whole answer.")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def query(index, text, size, as_json, home) -> None:
    """Search INDEX with Lucene's query syntax, e.g. 'title:fox AND "lazy dog"'."""
    def run():
        c = _client(home)
        r = c.request("POST", f"/{index}/_search", {
            "query": {"query_string": {"query": text}}, "size": size,
            "highlight": {"fields": {"*": {}}}})
        if as_json:
            click.echo(json.dumps(r, indent=2))
            return 0
        total = r["hits"]["total"]
        click.echo(f"{total['value']}{'+' if total['relation'] == 'gte' else ''} hits "
                   f"in {r['took']} ms")
        for h in r["hits"]["hits"]:
            snippet = next(iter(h.get("highlight", {}).values()), None)
            line = snippet[0] if snippet else json.dumps(h.get("_source", {}))[:100]
            click.echo(f"{h['_score']:8.3f}  {h['_id']}  {line}")
        return 0
    _guard("query", run)


@search.command("get")
@click.argument("index")
@click.argument("doc_id")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def get(index, doc_id, home) -> None:
    """Print one document's _source."""
    def run():
        from stackyard.search.client import SearchError
        try:
            r = _client(home).request("GET", f"/{index}/_doc/{doc_id}")
        except SearchError as exc:
            if exc.status == 404 and exc.kind == "http_error":
                click.echo(f"search get: no document {doc_id} in {index}", err=True)
                return 1
            raise
        click.echo(json.dumps(r["_source"]))
        return 0
    _guard("get", run)


@search.command("index")
@click.option("--input", "input_path", required=True, help="A DFS file or directory of JSON "
              "lines (one document each) or of text (one document a line).")
@click.option("--index", "index", required=True)
@click.option("--id-field", default="id", show_default=True,
              help="The JSON field used as the document id (absent: generated).")
@click.option("--shards", default=1, show_default=True,
              help="Shards of the index, when this makes it.")
@click.option("--bulk", is_flag=True, help="Send the documents through _bulk instead of "
              "building segments with a MapReduce job.")
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def index_cmd(input_path, index, id_field, shards, bulk, home) -> None:
    """Index documents from the DFS into INDEX: a MapReduce job builds each
    shard's segment in the DFS and the search servers open it."""
    if not bulk:
        _guard("index", lambda: _batch(input_path, index, id_field, shards, home))
        return

    def run():
        from stackyard.cli.progress import transfer_progress
        from stackyard.connect import connect
        c = _client(home)
        fs = connect(home=home, embedded=False).fs
        st = fs.stat(input_path)
        files = [e for e in fs.ls(input_path, recursive=True) if e["type"] == "file"] \
            if st["type"] == "directory" else [st]
        total = sum(e.get("length", 0) for e in files)
        done = sent = shown = 0
        batch: list[bytes] = []
        with transfer_progress(f"indexing into {index}", total) as advance:
            def bar_update(n):
                nonlocal shown
                advance(n - shown)
                shown = n
            def flush():
                nonlocal batch, sent
                if batch:
                    r = c.request("POST", f"/{index}/_bulk", b"".join(batch), ndjson=True)
                    bad = [i for i in r["items"] if "error" in next(iter(i.values()))]
                    if bad:
                        e = next(iter(bad[0].values()))["error"]
                        raise ValueError(f"{len(bad)} documents refused, the first: "
                                         f"{e['reason']}")
                    sent += len(r["items"])
                    batch = []
            for e in files:
                with fs.open(e["path"], "rb") as f:
                    for line in f:
                        done += len(line)
                        text = line.strip()
                        if not text:
                            continue
                        try:
                            doc = json.loads(text)
                            if not isinstance(doc, dict):
                                raise ValueError
                        except ValueError:
                            doc = {"text": text.decode("utf-8", "replace")}
                        meta = {"index": {}}
                        if id_field in doc:
                            meta["index"]["_id"] = str(doc[id_field])
                        batch.append(json.dumps(meta).encode() + b"\n" +
                                     json.dumps(doc).encode() + b"\n")
                        if len(batch) >= BATCH:
                            flush()
                            bar_update(done)
            flush()
            bar_update(done)
        c.request("POST", f"/{index}/_refresh")
        click.echo(f"indexed {sent} documents into {index}")
        return 0
    _guard("index", run)


def _batch(input_path, index, id_field, shards, home) -> int:
    from stackyard.cli.mr import JobProgress
    from stackyard.connect import connect
    from stackyard.search import batch
    c = _client(home)
    client = connect(home=home, embedded=False)
    show = JobProgress()
    try:
        got = batch.build(client, c, input_path, index, shards, id_field, progress=show)
    finally:
        show.close()
        client.close()
    click.echo(f"indexed {got['documents']} documents into {index} with job {got['job']} "
               f"in {got['seconds']:.1f} s; the shards took {got['shards']}")
    return 0


@search.command("stats")
@click.argument("index", required=False)
@click.option("--home", envvar="STACKYARD_HOME", default=None)
def stats(index, home) -> None:
    """Indices (or one): health, shards, documents, size."""
    def run():
        c = _client(home)
        h = c.request("GET", "/_cluster/health")
        click.echo(f"cluster {h['status']}: {h['number_of_nodes']} search servers, "
                   f"{h['active_primary_shards']} primaries, {h['active_shards']} active "
                   f"shards, {h['unassigned_shards']} unassigned")
        rows = c.request("GET", f"/_cat/indices/{index or '*'}?format=json")
        for r in rows:
            click.echo(f"{r['index']:20} {r['health']:7} shards {r['pri']} x{1 + int(r['rep'])}"
                       f"  docs {r['docs.count']:>10}  deleted {r['docs.deleted']:>8}  "
                       f"{r['store.size']}")
        return 0
    _guard("stats", run)
