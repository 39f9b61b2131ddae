"""RAPL backend against a fake powercap tree in tmp_path."""

from __future__ import annotations

import json
import os
import pathlib
import time
from typing import Any

import pytest

from trainables.energy import RaplMeter, RaplPermissionError, RaplUnavailableError, make_meter
from trainables.energy._rapl import find_zones

MAX_UJ = 262_143_328_850


def _standard_tree(rapl: Any) -> None:
    rapl.add("intel-rapl:0", "package-0", 1_000_000)
    rapl.add("intel-rapl:0:0", "core", 500_000)  # inside the package: must not be added again
    rapl.add("intel-rapl:0:1", "dram", 2_000_000)
    rapl.add("intel-rapl:1", "psys", 9_000_000)  # the whole platform: overlaps everything
    rapl.add("intel-rapl-mmio:0", "package-0", 7_000_000)  # same package through MMIO: not globbed


def test_package_and_dram_deltas_give_exact_joules(fake_rapl: Any) -> None:
    _standard_tree(fake_rapl)
    meter = make_meter("cpu", rapl_root=fake_rapl.root)
    assert (meter.source, meter.estimated, meter.attribution) == ("rapl", False, "package")
    meter.start()
    fake_rapl.set("intel-rapl:0", 1_000_000 + 12_500_000)
    fake_rapl.set("intel-rapl:0:0", 500_000 + 99_000_000)
    fake_rapl.set("intel-rapl:0:1", 2_000_000 + 1_500_000)
    fake_rapl.set("intel-rapl:1", 9_000_000 + 77_000_000)
    r = meter.stop()
    assert r.energy_j == pytest.approx(14.0, abs=1e-9)  # 12.5 J package + 1.5 J dram
    assert (r.source, r.estimated, r.attribution) == ("rapl", False, "package")
    prov = json.loads(json.dumps(meter.provenance()))
    assert [z["name"] for z in prov["zones"]] == ["package-0", "dram"]
    assert prov["zones"][0] == {"zone": "intel-rapl:0", "name": "package-0", "max_energy_range_uj": MAX_UJ}


def test_wraparound_uses_max_energy_range(fake_rapl: Any) -> None:
    fake_rapl.add("intel-rapl:0", "package-0", MAX_UJ - 1_000_000)
    meter = RaplMeter(find_zones(fake_rapl.root), root=fake_rapl.root, background=False)
    meter.start()
    fake_rapl.set("intel-rapl:0", 2_000_000)  # wrapped past the max
    assert meter.read().energy_j == pytest.approx(3.0)
    fake_rapl.set("intel-rapl:0", 5_000_000)
    assert meter.stop().energy_j == pytest.approx(6.0)


def test_two_packages_are_summed(fake_rapl: Any) -> None:
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    fake_rapl.add("intel-rapl:1", "package-1", 0)
    meter = make_meter("cpu", rapl_root=fake_rapl.root)
    meter.start()
    fake_rapl.set("intel-rapl:0", 4_000_000)
    fake_rapl.set("intel-rapl:1", 6_000_000)
    assert meter.stop().energy_j == pytest.approx(10.0)


def test_poll_thread_gives_a_trace_between_reads(fake_rapl: Any) -> None:
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    meter = RaplMeter(find_zones(fake_rapl.root), root=fake_rapl.root, poll_interval_s=0.02)
    meter.start()
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        fake_rapl.set("intel-rapl:0", int((time.perf_counter() - deadline + 0.3) * 50e6))  # 50 W
        time.sleep(0.005)
    meter.stop()
    trace = meter.trace()
    assert trace["source"] == "rapl" and len(trace["watts"]) >= 5  # polls, not just start/stop
    assert sum(trace["watts"]) / len(trace["watts"]) == pytest.approx(50.0, rel=0.3)


def _deny_energy_uj(monkeypatch: pytest.MonkeyPatch) -> None:
    """energy_uj is root-only on real systems; tests run as root, so make reading it raise as it would."""
    real = pathlib.Path.read_text

    def read_text(self: pathlib.Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", read_text)


def test_unreadable_energy_warns_once_and_falls_to_estimate(fake_rapl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _standard_tree(fake_rapl)
    _deny_energy_uj(monkeypatch)
    with pytest.warns(RuntimeWarning) as warned:
        meters = [make_meter("cpu", rapl_root=fake_rapl.root) for _ in range(3)]
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "\n" not in message
    assert f"sudo chmod a+r {fake_rapl.root}/intel-rapl:*/energy_uj" in message
    assert [m.source for m in meters] == ["estimated-cpu"] * 3
    assert meters[0].fallback_reasons[0].startswith("rapl: cannot read")


def test_unreadable_energy_raises_when_rapl_is_asked_for(fake_rapl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _standard_tree(fake_rapl)
    _deny_energy_uj(monkeypatch)
    with pytest.raises(RaplPermissionError, match=r"Fix: sudo chmod a\+r"):
        make_meter("cpu", backend="rapl", rapl_root=fake_rapl.root)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_is_a_permission_error(fake_rapl: Any) -> None:
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    (fake_rapl.root / "intel-rapl:0" / "energy_uj").chmod(0)
    with pytest.raises(RaplPermissionError):
        find_zones(fake_rapl.root)


def test_no_zones_is_unavailable(fake_rapl: Any) -> None:
    with pytest.raises(RaplUnavailableError, match="no RAPL zones"):
        make_meter("cpu", backend="rapl", rapl_root=fake_rapl.root)
    fake_rapl.add("intel-rapl:0:0", "core", 0)
    with pytest.raises(RaplUnavailableError, match="no package or dram zone"):
        find_zones(fake_rapl.root)
    assert make_meter("cpu", rapl_root=fake_rapl.root).source == "estimated-cpu"  # auto: quietly estimated


class _CpuClocks:
    """Fake CPU-time clocks: each trial process's own, and the machine's busy total (s)."""

    def __init__(self) -> None:
        self.process = {"a": 0.0, "b": 0.0}
        self.machine = 100.0

    def run(self, who: str, seconds: float) -> None:
        self.process[who] += seconds
        self.machine += seconds


def test_concurrent_trials_split_the_package_by_cpu_time_and_sum_to_it(fake_rapl: Any) -> None:
    from trainables.energy._cpu_share import CpuTimeShare

    fake_rapl.add("intel-rapl:0", "package-0", 0)
    fake_rapl.add("intel-rapl:0:1", "dram", 0)
    clocks = _CpuClocks()
    meters = {
        who: RaplMeter(
            find_zones(fake_rapl.root),
            root=fake_rapl.root,
            background=False,
            share=CpuTimeShare(process_s=lambda w=who: clocks.process[w], machine_s=lambda: clocks.machine),
        )
        for who in ("a", "b")
    }
    for m in meters.values():
        m.start()
    clocks.run("a", 3.0)  # trial a used three times the CPU of trial b over the same window
    clocks.run("b", 1.0)
    fake_rapl.set("intel-rapl:0", 400_000_000)  # the package spent 400 J, the DRAM 40 J
    fake_rapl.set("intel-rapl:0:1", 40_000_000)
    a, b = meters["a"].stop(), meters["b"].stop()
    assert (a.attribution, a.share, b.share) == ("shared", pytest.approx(0.75), pytest.approx(0.25))
    assert (a.energy_j, b.energy_j) == (pytest.approx(330.0), pytest.approx(110.0))
    assert a.energy_j + b.energy_j == pytest.approx(440.0)  # each joule billed once
    assert meters["a"].provenance()["share_method"] == "cpu-time"


def test_machine_busy_cpu_time_reads_proc_stat(tmp_path: pathlib.Path) -> None:
    from trainables.energy._cpu_share import machine_busy_cpu_s

    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice (USER_HZ ticks), as Linux writes it
    stat.write_text("cpu  1000 20 300 99999 50 7 3 10 0 0\ncpu0 500 10 150 50000 25 3 1 5 0 0\n")
    assert machine_busy_cpu_s(stat) == pytest.approx((1000 + 20 + 300 + 7 + 3 + 10) / os.sysconf("SC_CLK_TCK"))


def test_a_trials_rapl_meter_bills_its_share(fake_rapl: Any) -> None:
    fake_rapl.add("intel-rapl:0", "package-0", 0)
    meter = make_meter("cpu", rapl_root=fake_rapl.root, share_cpu=True)
    assert meter.attribution == "shared"
    meter.start()
    sum(i * i for i in range(200_000))  # some CPU time of this process
    fake_rapl.set("intel-rapl:0", 10_000_000)
    r = meter.stop()
    assert 0.0 <= r.share <= 1.0 and r.energy_j == pytest.approx(10.0 * r.share)
