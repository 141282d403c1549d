"""A cluster for the ecosystem tests, named by STACKYARD_HOME as a user's
would be, so that bare "yard:///..." URLs reach it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def yard_home(cluster):
    mp = pytest.MonkeyPatch()
    mp.setenv("STACKYARD_HOME", str(cluster.home.root))
    yield cluster
    mp.undo()
