"""The crash torture command (bench/torture.py): kill the whole cluster under a
TPC-B load at random moments, simulate a power cut, restart, and check that
every acknowledged commit survived whole and nothing else is half there.

CI runs 20 rounds at scale 1 and wants no failure. Two bite tests show the
harness can fail: with fsyncs that silently do not happen (the checkpointer's
data-file fsyncs; the WAL fsync at commit) it must find lost or corrupt data
within 20 rounds. The soak version runs by hand:

    TUSK_SOAK_RUNS=300 .venv/bin/python -m pytest -q tests/test_torture.py -m soak
    (or: .venv/bin/python bench/torture.py --runs 300)
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from bench.torture import Options, build_template, format_summary, has_power_loss, run_torture
from tests.conftest import _leak_registry


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scale-1 TPC-B cluster, copied by every round of every test here."""
    return build_template(tmp_path_factory.mktemp("torture"), scale=1, registry=_leak_registry)


def _torture(template: Path, tmp_path: Path, **kw: object):
    opts = Options(seed=kw.pop("seed", random.randrange(10**6)), verbose=False, **kw)
    summary = run_torture(opts, template=template, workdir=tmp_path, registry=_leak_registry)
    print(format_summary(summary, opts))
    return summary


def _data_loss(summary) -> list[str]:
    """The failures that are findings about the data (not the harness tripping:
    a bite test must not pass because a round could not run)."""
    noise = ("harness error", "client error", "simulate-power-loss failed", "hang")
    return [m for f in summary.failures for m in f["failures"] if not m.startswith(noise)]


@pytest.fixture
def power_loss() -> None:
    if not has_power_loss():
        pytest.skip("tusk_ctl simulate-power-loss is not available")


def test_torture_20_rounds_lose_nothing(template, tmp_path):
    s = _torture(template, tmp_path, runs=20)
    assert s.power_loss_simulated
    assert s.runs == s.crashes == 20
    assert s.commits_checked > 20 * 50, "the load barely ran"
    assert not s.failures, format_summary(s, Options(runs=20))


def test_bite_skipped_checkpoint_fsyncs_lose_data(template, tmp_path, power_loss):
    """The checkpointer's data-file fsyncs silently skipped, a checkpoint
    completed after each round's writes, a power cut: its redo pointer has moved
    past the WAL that could repair the dropped writes."""
    s = _torture(template, tmp_path, runs=20, fault="fsync:base/*:skip",
                 checkpoint_before_kill=True, min_load=0.5, max_load=1.5, max_failures=1)
    assert _data_loss(s), "the harness did not notice data files that were never fsynced"


def test_bite_skipped_wal_fsync_loses_acknowledged_commits(template, tmp_path, power_loss):
    """The WAL fsync at commit silently skipped: a power cut drops WAL of
    commits the clients were told about. No checkpoint in the round, so recovery
    starts from the last durable one and the loss shows as missing commits."""
    s = _torture(template, tmp_path, runs=20, fault="fsync:pg_wal/*:skip",
                 checkpoints=False, settings={"max_wal_size": "1GB"},
                 min_load=0.5, max_load=1.5, max_failures=1)
    assert _data_loss(s), "the harness did not notice WAL that was never fsynced"


@pytest.mark.soak
def test_torture_soak(template, tmp_path, request):
    markexpr = request.config.getoption("markexpr") or ""
    if "TUSK_SOAK_RUNS" not in os.environ and ("soak" not in markexpr
                                               or "not soak" in markexpr):
        pytest.skip("soak test: set TUSK_SOAK_RUNS or select -m soak")
    runs = int(os.environ.get("TUSK_SOAK_RUNS", "300"))
    s = _torture(template, tmp_path, runs=runs)
    assert not s.failures, format_summary(s, Options(runs=runs))
