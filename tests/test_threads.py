"""The thread policy's decisions: how many workers for the CPUs available and what other programs use."""

import os
from pathlib import Path

import pytest

from faiss_search import threads
from faiss_search.threads import ThreadPlan, ThreadPolicy, plan_threads


@pytest.mark.parametrize(("available", "others", "requested", "workers"), [
    (2, 0.0, 0, 2),    # idle laptop: both cores
    (2, 0.3, 0, 2),    # a browser tab ticking over: still both
    (2, 0.6, 0, 1),    # more than half a core taken: the free one
    (2, 2.0, 0, 1),    # beside two busy loops or another engine: one worker, never none
    (2, 7.5, 0, 1),    # an overloaded machine (load 6 on 2 cores)
    (8, 2.2, 0, 6),    # a bigger machine with a build running
    (8, 0.0, 0, 8),
    (1, 0.0, 0, 1),    # a container capped at one CPU
    (2, 2.0, 2, 2),    # threads = 2 pins it, whatever the load
    (2, 0.0, 5, 2),    # but never more workers than CPUs
    (4, 0.0, 1, 1),
])
def test_the_policy_picks_workers_for_cpus_and_load(available, others, requested, workers):
    assert plan_threads(available, others, requested) == ThreadPlan(workers=workers, intra_op=1)


def test_the_cgroup_quota_caps_the_cpus(tmp_path: Path, monkeypatch):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads._cgroup_quota(tmp_path) == 0.5
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 0.5)
    assert threads.available_cpus() == 1
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1.5)
    assert threads.available_cpus() == min(2, len(os.sched_getaffinity(0)))


def test_a_running_build_decides_again_as_the_load_changes(monkeypatch):
    clock = [100.0]
    load = [0.0]
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    monkeypatch.setattr(threads.LoadWatch, "others_busy", lambda self: load[0])
    policy = ThreadPolicy()
    assert policy.current().workers == 2          # nothing measured yet
    load[0] = 2.0
    clock[0] += 0.2
    assert policy.current().workers == 2          # too soon to have measured anything
    clock[0] += 0.5
    assert policy.current().workers == 1          # the first measurement: another program took a core
    load[0] = 0.0
    clock[0] += 1.0
    assert policy.current().workers == 1          # rechecked only every RECHECK_SECONDS
    clock[0] += threads.RECHECK_SECONDS
    assert policy.current().workers == 2          # it went away: both cores again
    pinned = ThreadPolicy(requested=1)
    load[0] = 0.0
    clock[0] += 60
    assert pinned.current().workers == 1


def test_the_load_of_other_programs_excludes_our_own_time(monkeypatch):
    samples = iter([(0.0, 10.0, 1.0), (2.0, 14.0, 2.0)])  # 4 CPU-seconds busy in 2 s, 1 of them ours
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    assert threads.LoadWatch().others_busy() == pytest.approx(1.5)


def test_the_threads_setting_is_checked(home, runner, monkeypatch):
    from faiss_search.cli import app
    from faiss_search.config import load_settings

    monkeypatch.setenv("FSEARCH_THREADS", "3")
    assert load_settings().threads == 3
    monkeypatch.setenv("FSEARCH_THREADS", "-1")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2 and "threads must be 0 (automatic) or more" in result.stderr


def test_openmp_pools_sleep_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    threads.quiet_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.quiet_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
