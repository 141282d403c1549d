"""PySpark's own documented examples (the doctests shipped in the installed
pyspark-client) against a live Stackyard cluster, module by module. The
floors are what passes today: a change that loses examples fails here.
`python tests/connect/doctests.py sc://...` prints the same counts against
any Spark Connect server (Sail's, for one). functions/builtin.py, the
largest, runs in test_doctests_functions.py so xdist can give it a worker
of its own."""

from __future__ import annotations

import pytest

from tests.connect.doctests import MODULES, check_doctests


@pytest.mark.timeout(900)       # six modules' examples, beside the rest of the suite
def test_pysparks_own_doctests_pass_against_stackyard(connect_cluster, tmp_path):
    check_doctests(connect_cluster, [m for m in MODULES if m != "functions/builtin.py"], tmp_path)
