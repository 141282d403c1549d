"""PySpark's own documented examples, run against a Spark Connect server:
the doctests of the modules the issue names, as shipped in the installed
pyspark-client, with pytest's --doctest-modules and the flags PySpark runs
them with. Prints and returns passed / run per module."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

MODULES = ("dataframe.py", "column.py", "group.py", "window.py", "readwriter.py",
           "catalog.py", "functions/builtin.py")


def run(url: str, modules=MODULES, python: str = sys.executable, timeout: float = 1500,
        workdir: str | None = None) -> dict[str, tuple[int, int]]:
    import pyspark
    sql = Path(pyspark.__file__).parent / "sql"
    env = {**os.environ, "SPARK_REMOTE": url, "PYTHONHASHSEED": "0",
           "PYTHONPATH": str(Path(__file__).parent)}
    # an ini of its own: pytest would otherwise find the project's pyproject.toml
    # above a venv kept in the checkout and take its addopts (xdist workers, in
    # whose __main__ pyspark's connect client refuses to start)
    ini = Path(workdir or tempfile.mkdtemp()) / "doctest-pytest.ini"
    ini.write_text("[pytest]\n")
    out = {}
    for m in modules:
        proc = subprocess.run(
            [python, "-m", "pytest", "-q", "-c", str(ini), "-p", "no:cacheprovider",
             "-p", "no:xdist", "-p", "doctest_plugin", "--rootdir", str(sql), "--doctest-modules", str(sql / m), "-o",
             "doctest_optionflags=ELLIPSIS NORMALIZE_WHITESPACE", "--timeout", "120",
             "-p", "no:randomly"], capture_output=True, text=True, env=env, timeout=timeout,
            cwd=workdir)
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        passed, failed, errors = (_count(tail, w) for w in ("passed", "failed", "error"))
        out[m] = (passed, passed + failed + errors)
        print(f"{m}: {passed} of {passed + failed + errors} passed ({tail})")
    return out


# passed examples per module, at least (of those collected there)
FLOORS = {"dataframe.py": 0.65, "column.py": 0.80, "group.py": 0.80, "window.py": 0.75,
          "readwriter.py": 0.50, "catalog.py": 0.60, "functions/builtin.py": 0.44}


def check_doctests(cluster, modules, workdir) -> None:
    from tests.connect.conftest import remote
    counts = run(remote(cluster), modules, workdir=str(workdir))
    report = ", ".join(f"{m} {p}/{n}" for m, (p, n) in counts.items())
    total = sum(p for p, _ in counts.values()), sum(n for _, n in counts.values())
    print(f"doctests: {report}; total {total[0]}/{total[1]}")
    for m, (passed, collected) in counts.items():
        assert collected > 0, f"{m}: no doctests ran ({report})"
        assert passed >= FLOORS[m] * collected, f"{m}: {passed}/{collected} ({report})"


def _count(tail: str, word: str) -> int:
    found = re.search(r"(\d+) " + word, tail)
    return int(found.group(1)) if found else 0


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:] or MODULES)
