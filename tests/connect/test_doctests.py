"""PySpark's own documented examples (the doctests shipped in the installed
pyspark-client) against a live Stackyard cluster, module by module. The
floors are what passes today: a change that loses examples fails here.
`python tests/connect/doctests.py sc://...` prints the same counts against
any Spark Connect server (Sail's, for one)."""

from __future__ import annotations

import pytest

from tests.connect.conftest import remote
from tests.connect.doctests import MODULES, run

# passed examples per module, at least (of those collected there)
FLOORS = {"dataframe.py": 0.65, "column.py": 0.80, "group.py": 0.80, "window.py": 0.75,
          "readwriter.py": 0.50, "catalog.py": 0.60, "functions/builtin.py": 0.44}


@pytest.mark.timeout(1500)      # seven modules' examples, beside the rest of the suite
def test_pysparks_own_doctests_pass_against_stackyard(connect_cluster, tmp_path):
    counts = run(remote(connect_cluster), MODULES, workdir=str(tmp_path))
    report = ", ".join(f"{m} {p}/{n}" for m, (p, n) in counts.items())
    total = sum(p for p, _ in counts.values()), sum(n for _, n in counts.values())
    print(f"doctests: {report}; total {total[0]}/{total[1]}")
    for m, (passed, collected) in counts.items():
        assert collected > 0, f"{m}: no doctests ran ({report})"
        assert passed >= FLOORS[m] * collected, f"{m}: {passed}/{collected} ({report})"
