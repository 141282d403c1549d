"""MapReduce on a real cluster: answers, formats, failures, stragglers, spills."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest

from stackyard.compute.client import JobFailed
from stackyard.mapreduce import Job, KeyValueInput, PickleInput, PickleOutput, StreamingJob
from tests.compute import jobs
from tests.compute.conftest import make_text, read_output

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def corpus(engine):
    """~2 MB of text over 1 MiB chunks: several splits, lines across boundaries."""
    text = make_text(60_000)
    with engine.fs.open("/corpus/a.txt", "wb") as f:
        f.write(text.encode())
    small = make_text(300, seed=2)
    with engine.fs.open("/corpus/b.txt", "wb") as f:
        f.write(small.encode())
    engine.fs.open("/corpus/_ignored", "wb").close()
    return collections.Counter((text + small).split())


def test_word_count_equals_counter(engine, corpus):
    result = jobs.WordCount(reducers=3).run("/corpus", "/out/wc", client=engine.client)
    got = {k: int(v) for k, v in read_output(engine.fs, "/out/wc").items()}
    assert got == corpus
    c = result.counters
    assert c["map_input_records"] == 60_300 and c["reduce_output_records"] == len(corpus)
    assert c["combine_output_records"] < c["combine_input_records"] == c["map_output_records"]
    maps = len(engine.fs.chunk_locations("/corpus/a.txt")) + 1
    # one launch per task; more only for the backups speculation starts on a loaded
    # machine (a backup attempt may carry a group of tasks) or a failed attempt
    extra = c["launched_tasks"] - (maps + 3)
    explained = sum(c.get(k, 0) for k in ("speculative_attempts", "failed_attempts",
                                          "rerun_lost_outputs"))
    assert maps >= 3 and extra >= 0 and (extra == 0 or explained > 0), c
    assert c["data_local_tasks"] >= 1
    assert sorted(engine.fs.ls("/out/wc", detail=False)) == [
        "/out/wc/_SUCCESS", "/out/wc/part-r-00000", "/out/wc/part-r-00001", "/out/wc/part-r-00002"]


def test_streaming_equals_python_api(engine, corpus):
    files = {n: (EXAMPLES / "streaming" / n).read_bytes() for n in ("mapper.py", "reducer.py")}
    job = StreamingJob(mapper_cmd="mapper.py", reducer_cmd="reducer.py", files=files, reducers=2)
    job.run("/corpus", "/out/streaming", client=engine.client)
    assert {k: int(v) for k, v in read_output(engine.fs, "/out/streaming").items()} == corpus


def test_streaming_cli_with_combiner(engine, corpus):
    d = EXAMPLES / "streaming"
    proc = engine.yard("mr", "streaming", "-mapper", "python3 mapper.py", "-combiner",
                       "python3 reducer.py", "-reducer", "python3 reducer.py",
                       "-file", str(d / "mapper.py"), "-file", str(d / "reducer.py"),
                       "-input", "/corpus/a.txt", "-input", "/corpus/b.txt",
                       "-output", "/out/streaming-cli", "-numReduceTasks", "2", check=True)
    err = proc.stderr.decode()
    assert "completed successfully" in err and "Combine output records=" in err
    assert "map 100% reduce 100%" in err
    assert {k: int(v) for k, v in read_output(engine.fs, "/out/streaming-cli").items()} == corpus


def test_splits_hand_every_line_to_exactly_one_map(engine):
    """Line offsets from a map-only job over 1 MiB chunks equal the file's lines."""
    text = make_text(40_000, seed=5)
    with engine.fs.open("/lines/x.txt", "wb") as f:
        f.write(text.encode())
    jobs.LineLengths().run("/lines/x.txt", "/out/lines", client=engine.client)
    got = {}
    for p in engine.fs.glob("/out/lines/part-m-*"):
        for line in engine.fs.cat(p).decode().splitlines():
            k, v = line.split("\t")
            got[int(k)] = int(v)
    expected, pos = {}, 0
    for line in text.splitlines(keepends=True):
        expected[pos] = len(line) - 1
        pos += len(line)
    assert got == expected
    assert len(engine.fs.glob("/out/lines/part-m-*")) == len(engine.fs.chunk_locations("/lines/x.txt"))


def test_a_mapper_that_raises_fails_the_job_with_its_message(engine, corpus):
    with pytest.raises(JobFailed) as info:
        jobs.Raises(max_attempts=2).run("/corpus", "/out/raises", client=engine.client)
    msg = str(info.value)
    assert "ValueError: bad record at offset" in msg and "failed 2 times" in msg
    assert "Traceback" in msg and "in mapper" in msg
    assert info.value.summary["counters"]["failed_attempts"] >= 2
    # the committer's abort leaves nothing, so the same command can run again
    assert not engine.fs.exists("/out/raises")
    with pytest.raises(JobFailed):
        jobs.Raises(max_attempts=1).run("/corpus", "/out/raises", client=engine.client)


def test_a_flaky_mapper_is_retried_and_the_job_succeeds(engine, corpus):
    result = jobs.FailsOnce().run("/corpus", "/out/flaky", client=engine.client)
    assert result.counters["failed_attempts"] == 1
    assert {k: int(v) for k, v in read_output(engine.fs, "/out/flaky").items()} == corpus


def test_spills_when_map_output_exceeds_the_sort_buffer(engine, corpus):
    result = jobs.WordCount(sort_buffer=64 * 1024, reducers=2).run(
        "/corpus", "/out/spill", client=engine.client)
    c = result.counters
    # several spills per map: more records reach disk than one merged pass would write
    assert c["spilled_records"] > c["combine_output_records"] // 2
    assert c["spilled_records"] > 3 * len(corpus)
    assert {k: int(v) for k, v in read_output(engine.fs, "/out/spill").items()} == corpus


def test_chained_jobs_with_pickled_records(engine, corpus):
    class Count(jobs.WordCount):
        output_format = PickleOutput()

    class ByCount(Job):
        input_format = PickleInput()

        def mapper(self, word, n):
            yield n, word

        def reducer(self, n, words):
            yield n, ",".join(sorted(words))

    Count(reducers=2).run("/corpus", "/out/chain1", client=engine.client)
    ByCount(reducers=1).run("/out/chain1", "/out/chain2", client=engine.client)
    got = {int(k): v.split(",") for k, v in read_output(engine.fs, "/out/chain2").items()}
    expected = collections.defaultdict(list)
    for w, n in corpus.items():
        expected[n].append(w)
    assert got == {n: sorted(ws) for n, ws in expected.items()}
    # the reducer's output is sorted by key within the part file
    keys = [int(line.split("\t")[0]) for line in
            engine.fs.cat("/out/chain2/part-r-00000").decode().splitlines()]
    assert keys == sorted(keys)


def test_key_value_input(engine):
    with engine.fs.open("/kv/in.tsv", "wb") as f:
        f.write(b"a\t1\nb\t2\na\t3\nnotab\n")

    class Sum(Job):
        input_format = KeyValueInput()

        def reducer(self, key, values):
            yield key, sum(int(v or 0) for v in values)

    Sum().run("/kv/in.tsv", "/out/kv", client=engine.client)
    assert read_output(engine.fs, "/out/kv") == {"a": "4", "b": "2", "notab": "0"}


def test_bad_input_and_existing_output_are_clear_errors(engine, corpus):
    with pytest.raises(FileNotFoundError, match="Input path does not exist"):
        jobs.WordCount().run("/no/such/input", "/out/none", client=engine.client)
    engine.fs.mkdir("/out/exists")
    with pytest.raises(FileExistsError, match="Output directory already exists"):
        jobs.WordCount().run("/corpus", "/out/exists", client=engine.client)
    for args in (["mr", "run", str(EXAMPLES / "wordcount" / "wordcount.py"), "--input", "/nope",
                  "--output", "/out/x"],
                 ["mr", "run", "/no/job.py", "--input", "/corpus", "--output", "/out/x"],
                 ["mr", "streaming", "-mapper", "cat"],
                 ["mr", "streaming", "-mapper", "cat", "-input", "/corpus", "-output", "/out/y",
                  "-numReduceTasks", "-2"],
                 ["mr", "status", "job_nope"]):
        proc = engine.yard(*args)
        assert proc.returncode == 1, args
        assert b"Traceback" not in proc.stderr, (args, proc.stderr)


def test_cli_run_prints_counters(engine, corpus):
    proc = engine.yard("mr", "run", str(EXAMPLES / "wordcount" / "wordcount.py"),
                       "--input", "/corpus", "--output", "/out/cli", "--reducers", "2", check=True)
    err = proc.stderr.decode()
    assert "Map input records=60300" in err and "Reduce output records=" in err
    assert {k: int(v) for k, v in read_output(engine.fs, "/out/cli").items()} == corpus
    listing = engine.yard("mr", "list", check=True).stdout.decode()
    assert "WordCount" in listing and "succeeded" in listing


def test_failing_streaming_command_reports_its_stderr(engine, corpus):
    job = StreamingJob(mapper_cmd=f"{sys.executable} -c 'import sys; sys.exit(\"mapper broke\")'",
                       reducers=1, max_attempts=1)
    with pytest.raises(JobFailed, match="mapper broke"):
        job.run("/corpus/b.txt", "/out/broken", client=engine.client)


def test_text_blocks_hand_out_the_same_lines_as_text_input(engine):
    """TextBlockInput, with blocks smaller and larger than a line run, owns
    exactly the lines TextInput would: every line once, across 1 MiB chunks."""
    from stackyard.mapreduce import TextBlockInput

    text = make_text(40_000, seed=8)
    with engine.fs.open("/blocks/x.txt", "wb") as f:
        f.write(text.encode())

    class BlockLines(Job):
        reducers = 0

        def map_records(self, blocks):
            for offset, block in blocks:
                assert block.endswith(b"\n")
                pos = offset
                for line in block.splitlines(keepends=True):
                    yield pos, len(line) - 1
                    pos += len(line)

    expected, pos = {}, 0
    for line in text.splitlines(keepends=True):
        expected[pos] = len(line) - 1
        pos += len(line)
    for block in (1000, 256 << 10, 4 << 20):
        out = f"/out/blocks-{block}"
        BlockLines(input_format=TextBlockInput(block)).run("/blocks/x.txt", out,
                                                            client=engine.client)
        got = {}
        for p in engine.fs.glob(f"{out}/part-m-*"):
            for line in engine.fs.cat(p).decode().splitlines():
                k, v = line.split("\t")
                assert int(k) not in got, f"line at {k} handed out twice"
                got[int(k)] = int(v)
        assert got == expected, block


def test_a_job_file_may_import_a_helper_module_beside_it(engine, corpus, tmp_path):
    # the workers have neither file: both travel in the job's payload
    (tmp_path / "shout_helper.py").write_text("def shout(word):\n    return word.upper()\n")
    (tmp_path / "shouting.py").write_text(
        "from shout_helper import shout\n"
        "from stackyard.mapreduce import Job\n\n\n"
        "class Shouting(Job):\n"
        "    reducers = 1\n\n"
        "    def mapper(self, offset, line):\n"
        "        for word in line.split():\n"
        "            yield shout(word), 1\n\n"
        "    def reducer(self, word, counts):\n"
        "        yield word, sum(counts)\n")
    engine.yard("mr", "run", str(tmp_path / "shouting.py"), "--input", "/corpus",
                "--output", "/out/shout", check=True)
    text = engine.fs.cat("/corpus/a.txt") + engine.fs.cat("/corpus/b.txt")
    want = collections.Counter(w.upper() for w in text.decode().split())
    got = read_output(engine.fs, "/out/shout")
    assert got == {w: str(n) for w, n in want.items()}


def test_mr_kill_cancels_a_running_job_and_its_tasks(engine):
    import threading

    from tests.conftest import wait_until
    with engine.fs.open("/kill/in.txt", "wb") as f:
        f.write(b"a b c\n" * 200)
    job = jobs.SlowWordCount(reducers=1)
    job.map_delay = 1.0
    failed = []

    def run() -> None:
        try:
            job.run("/kill/in.txt", "/kill/out", client=engine.client)
        except JobFailed as exc:
            failed.append(exc)

    t = threading.Thread(target=run)
    t.start()
    running = wait_until(lambda: [j for j in engine.client.engine.jobs()
                                  if j["state"] == "running" and j["stages"][0]["running"]],
                         60, "the job's maps to run")[0]
    out = engine.yard("mr", "kill", running["id"], check=True)
    assert f"Killed {running['id']}" in out.stdout.decode()
    t.join(60)
    assert failed and "killed by the user" in str(failed[0])
    wait_until(lambda: all(w["running"] == 0 for w in engine.client.engine.workers()), 30,
               "its task processes to be killed")
    listing = engine.yard("mr", "list", check=True).stdout.decode()
    assert running["id"] in listing and "killed" in listing
