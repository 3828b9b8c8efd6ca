"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from tests.unit.nbtree_harness import BTEnv


@pytest.fixture
def env(tmp_path):
    """A B-tree test environment (shared memory, WAL, a data directory), closed
    after the test; a module may define its own ``env`` instead."""
    e = BTEnv(tmp_path)
    yield e
    e.close()
