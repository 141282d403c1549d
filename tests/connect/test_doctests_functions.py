"""PySpark's documented examples of pyspark.sql.functions (526 of them),
apart from the other modules' so the two halves run on different workers."""

from __future__ import annotations

import pytest

from tests.connect.doctests import check_doctests


@pytest.mark.timeout(900)
def test_pysparks_function_doctests_pass_against_stackyard(connect_cluster, tmp_path):
    check_doctests(connect_cluster, ["functions/builtin.py"], tmp_path)
