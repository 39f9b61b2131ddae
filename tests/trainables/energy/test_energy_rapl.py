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
