"""Wide shuffles of tiny records, and Spark's transitive-closure example, on
yard (a fresh local cluster of 2 workers) and on PySpark local[2], in one run.

    python bench/shuffle_scale.py [--grid 100,500,1000,2000] [--tc-limit 900] [--skip spark]

The grid: for each N, an N x N shuffle (N map tasks, N reducers) in which
every map emits 10 tiny records, so the work is the shuffle's fan-in, not
the records: `parallelize(range(N), N).flatMap(10 keys).reduceByKey(add, N)
.count()`. Issue 20's targets: every cell ahead of PySpark, and yard's time
per cell growing no faster than M + R once M x R passes 10^5.

The closure: Spark's own examples/src/main/python/transitive_closure.py,
taken from the installed pyspark package. PySpark runs it as it is
(spark-submit --master local[2]); yard runs it with only the lines that make
the session changed: a yard context, under the session's names. Each is timed to its
fixed point ("TC has N edges"), or stopped at --tc-limit seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from operator import add
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rdd_peers import ROOT, spark_context, yard_context  # noqa: E402
from scratch import timed  # noqa: E402

RECORDS_PER_MAP = 10


def keys(n: int):
    def emit(i: int) -> list[tuple[int, int]]:
        return [((i * 7919 + j * 104729) % (10 * n), 1) for j in range(RECORDS_PER_MAP)]
    return emit


def cell(sc, n: int) -> int:
    return sc.parallelize(range(n), n).flatMap(keys(n)).reduceByKey(add, n).count()


def spark_example() -> Path:
    import pyspark
    path = Path(pyspark.__file__).parent / "examples/src/main/python/transitive_closure.py"
    if not path.exists():
        raise SystemExit(f"no {path}: this pyspark does not ship Spark's examples")
    return path


def yard_version(source: str, home: str) -> str:
    """Spark's example with the lines that make its session made a yard
    context's (under the names the example uses: spark.sparkContext, spark._sc,
    spark.stop())."""
    start = source.find("spark = SparkSession")
    end = source.find(".getOrCreate()", start)
    if start < 0 or end < 0:
        raise SystemExit("Spark's example changed shape: its session lines were not found")
    indent = " " * (start - source.rfind("\n", 0, start) - 1)
    made = (f"import types, stackyard as sy\n{indent}"
            f"sc = sy.connect(home={home!r}, embedded=False)"
            f".context('PythonTransitiveClosure', progress=False)\n{indent}"
            "spark = types.SimpleNamespace(sparkContext=sc, _sc=sc, stop=sc.stop)")
    out = source[:start] + made + source[end + len(".getOrCreate()"):]
    return out.replace("from pyspark.sql import SparkSession\n", "")


def run_closure(cmd: list[str], limit: float, env: dict) -> tuple[float | None, str]:
    """(seconds to the fixed point or None if over LIMIT, its answer line)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        return None, f"not at the fixed point after {limit:.0f} s"
    took = time.perf_counter() - t
    line = next((x for x in out.splitlines() if x.startswith("TC has")), "")
    if proc.returncode or not line:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{err[-3000:]}")
    return took, line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", default="100,500,1000,2000")
    ap.add_argument("--tc-limit", type=float, default=900.0)
    ap.add_argument("--skip", default="", help="comma-separated: spark, closure")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    sizes = [int(x) for x in args.grid.split(",")]
    rows: dict[int, dict[str, float]] = {n: {} for n in sizes}
    answers: dict[int, set] = {n: set() for n in sizes}
    closure: dict[str, tuple] = {}
    example = spark_example()

    def grid(name: str, sc) -> None:
        for n in sizes:
            secs, got = timed(lambda n=n: cell(sc, n))
            rows[n][name] = secs
            answers[n].add(got)
            print(f"{name} {n} x {n}: {secs:.1f} s", flush=True)

    with yard_context() as (sc, root):
        grid("yard", sc)
        if "closure" not in skip:
            sc.stop()
            with tempfile.TemporaryDirectory() as tmp:
                script = Path(tmp) / "transitive_closure.py"
                script.write_text(yard_version(example.read_text(), str(root / "cluster")))
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                closure["yard"] = run_closure([sys.executable, str(script)], args.tc_limit, env)
                print(f"yard closure: {closure['yard']}", flush=True)

    if "spark" not in skip:
        with spark_context() as ssc:
            grid("PySpark", ssc)
        if "closure" not in skip:
            submit = Path(sys.executable).parent / "spark-submit"
            env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
            closure["PySpark"] = run_closure([str(submit), "--master", "local[2]",
                                              "--conf", "spark.ui.enabled=false", str(example)],
                                             args.tc_limit, env)
            print(f"PySpark closure: {closure['PySpark']}", flush=True)

    for n in sizes:
        if len(answers[n]) != 1:
            raise SystemExit(f"{n} x {n}: the engines disagree: {answers[n]}")
    print(f"\nN x N shuffles of {RECORDS_PER_MAP} records a map (answers agree):")
    print(f"  {'cell':>13s} {'yard':>8s} {'PySpark':>8s}  ratio   yard ms per M + R")
    for n in sizes:
        y, s = rows[n]["yard"], rows[n].get("PySpark")
        ratio = f"{s / y:6.2f}x" if s else "     -"
        print(f"  {n:>5d} x {n:<5d} {y:7.1f}s {s or float('nan'):7.1f}s  {ratio}  "
              f"{1000 * y / (2 * n):.3f}")
    if closure:
        print("\nSpark's transitive-closure example, to its fixed point:")
        for name, (secs, line) in closure.items():
            shown = f"{secs:.1f} s" if secs else "-"
            print(f"  {name:8s} {shown:>9s}  {line}")
        y, s = closure.get("yard", (None,))[0], closure.get("PySpark", (None,))[0]
        if y and s:
            print(f"  yard at {s / y:.2f}x PySpark's speed")
        elif y and "PySpark" in closure:
            print(f"  yard at more than {args.tc_limit / y:.2f}x PySpark's speed")


if __name__ == "__main__":
    main()
