"""fsspec's own abstract test suite (copy, get, put, open, pipe), run against
a live cluster through the "yard" protocol."""

from __future__ import annotations

import posixpath
import uuid

import fsspec
import pytest
from fsspec.tests.abstract import AbstractFixtures
from fsspec.tests.abstract.copy import AbstractCopyTests
from fsspec.tests.abstract.get import AbstractGetTests
from fsspec.tests.abstract.open import AbstractOpenTests
from fsspec.tests.abstract.pipe import AbstractPipeTests
from fsspec.tests.abstract.put import AbstractPutTests


class YardFixtures(AbstractFixtures):
    @pytest.fixture
    def fs(self, yard_home):
        return fsspec.filesystem("yard")

    @pytest.fixture
    def fs_join(self):
        return posixpath.join

    @pytest.fixture
    def fs_path(self, fs):
        path = f"/fsspec-suite-{uuid.uuid4().hex[:8]}"
        yield path
        if fs.exists(path):
            fs.rm(path, recursive=True)


class TestYardCopy(AbstractCopyTests, YardFixtures):
    pass


class TestYardGet(AbstractGetTests, YardFixtures):
    pass


class TestYardPut(AbstractPutTests, YardFixtures):
    pass


class TestYardOpen(AbstractOpenTests, YardFixtures):
    pass


class TestYardPipe(AbstractPipeTests, YardFixtures):
    pass
