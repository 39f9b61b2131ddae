"""Does the exported front run as the sweep measured it? The issue-18 numbers, for the default sweep's front.

For every trial on a run's front, ``export`` (ONNX fp32, TorchScript, int8 ONNX) measures each artifact on this
machine; this prints them side by side and checks:

- fp32 ONNX test accuracy equals PyTorch's within 0.1 points;
- int8 ONNX test accuracy within 1 point of fp32, with its latency and energy per 1,000 single-sample inferences
  as a ratio to fp32's, measured in the same export (fp32 and int8 rounds alternating, median of 3 rounds each);
- a structurally pruned model's ONNX graph has the smaller parameter count and the FLOPs the sweep recorded.

The default sweep prunes unstructured, so its front has no structurally pruned model; the second run is the default
spec with ``prune_method: structured`` (same seed, space and budget).

    python benchmarks/export_check.py RUN_DIR [RUN_DIR ...]   # runs already swept
    python benchmarks/export_check.py --sweep [--storage DIR]   # sweep both (default spec, and structured) first
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # why: runnable as a script from any folder

MAX_FP32_POINTS = 0.1
MAX_INT8_POINTS = 1.0


def _sweep(storage: Path, name: str, spec: Path) -> Path:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "orchestrator", "sweep", str(spec), "--storage", str(storage), "--name", name]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return storage / name


def sweep_both(storage: Path) -> list[Path]:
    """The default sweep, and the default spec with structured pruning."""
    import yaml

    default = ROOT / "search_spaces" / "digits_resnet.yaml"
    raw = yaml.safe_load(default.read_text())
    raw["fixed"]["prune_method"] = "structured"
    raw["name"] = "digits_resnet_structured"
    structured = storage / "digits_resnet_structured.yaml"
    storage.mkdir(parents=True, exist_ok=True)
    structured.write_text(yaml.safe_dump(raw))
    return [_sweep(storage, "default", default), _sweep(storage, "structured", structured)]


def _art(card: dict[str, Any], fmt: str) -> dict[str, Any]:
    return next(a for a in card["artifacts"] if a["format"] == fmt)


def rows(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in cards:
        onnx, int8, ts = _art(c, "onnx"), _art(c, "int8"), _art(c, "torchscript")
        m, cfg = c["sweep_metrics"], c["config"]
        out.append(
            {
                "trial": c["trial_id"],
                "prune": f"{cfg.get('prune_method', '-')[:5]} {cfg.get('prune_ratio', 0):.2f}",
                "torch_acc": c["pytorch"]["test_accuracy"],
                "fp32_pts": onnx["accuracy_change_points"],
                "ts_pts": ts["accuracy_change_points"],
                "int8_pts": int8["vs_fp32"]["accuracy_change_points"],
                "int8_mode": int8["quantisation"]["mode"],
                "fp32_ms": onnx["latency_ms"],
                "int8_ms": int8["latency_ms"],
                "lat_ratio": int8["vs_fp32"]["latency_ratio"],
                "fp32_j1k": onnx["energy_j_per_1k"],
                "int8_j1k": int8["energy_j_per_1k"],
                "j_ratio": int8["vs_fp32"]["energy_ratio"],
                "kib_fp32": onnx["bytes"] / 1024,
                "kib_int8": int8["bytes"] / 1024,
                "sweep_params": m.get("params"),
                "torch_params": c["pytorch"]["params"],
                "graph_params": onnx["params"],
                "sweep_dense_flops": m.get("flops"),
                "sweep_eff_flops": m.get("effective_flops"),
                "graph_flops": onnx["flops"],
                "source": onnx["energy_source"],
                "structured": cfg.get("prune_method") == "structured" and (cfg.get("prune_ratio") or 0) > 0,
            }
        )
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def report(run: Path, table: list[dict[str, Any]]) -> bool:
    cols = [k for k in table[0] if k not in ("source", "structured")]
    print(f"\n{run}  (energy: {table[0]['source']})")
    print("  ".join(f"{c:>11}" for c in cols))
    for r in table:
        print("  ".join(f"{_fmt(r[c]):>11}" for c in cols))
    fp32 = max(abs(r["fp32_pts"]) for r in table)
    loss = max(0.0, -min(r["int8_pts"] for r in table))  # why max: a gain is no loss (and prints no "-0.0000")
    ok = fp32 <= MAX_FP32_POINTS and loss <= MAX_INT8_POINTS
    print(f"fp32 ONNX vs PyTorch, largest |change|: {fp32:.4f} points (target <= {MAX_FP32_POINTS})")
    print(
        f"int8 vs fp32, largest loss: {loss:.4f} points (target <= {MAX_INT8_POINTS}); modes: "
        f"{sorted({r['int8_mode'] for r in table})}"
    )
    lat, jr = [r["lat_ratio"] for r in table], [r["j_ratio"] for r in table]
    print(f"int8/fp32 latency ratio: median {statistics.median(lat):.3f} (min {min(lat):.3f}, max {max(lat):.3f})")
    print(f"int8/fp32 energy ratio:  median {statistics.median(jr):.3f} (min {min(jr):.3f}, max {max(jr):.3f})")
    for r in (r for r in table if r["structured"]):
        same = r["graph_flops"] == r["sweep_eff_flops"] < r["sweep_dense_flops"]
        smaller = r["graph_params"] <= r["torch_params"] == r["sweep_params"]
        ok = ok and same and smaller
        print(
            f"structured {r['trial']}: graph FLOPs {r['graph_flops']} = sweep's effective {r['sweep_eff_flops']} "
            f"(dense {r['sweep_dense_flops']}): {same}; params graph {r['graph_params']} / torch {r['torch_params']} "
            f"/ sweep {r['sweep_params']}: {smaller}"
        )
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", type=Path)
    p.add_argument("--sweep", action="store_true", help="run the default sweep and its structured variant first")
    p.add_argument("--storage", type=Path, help="where --sweep writes its runs (default: a temporary directory)")
    args = p.parse_args()
    from orchestrator.export import export_run

    runs = list(args.runs)
    if args.sweep:
        runs += sweep_both(args.storage or Path(tempfile.mkdtemp(prefix="export-check-")))
    if not runs:
        p.error("give RUN_DIR(s) or --sweep")
    ok = True
    for run in runs:
        with tempfile.TemporaryDirectory() as out:
            result = export_run(run, front=True, out=out)
            ok = report(run, rows(result.cards)) and ok
    print("\nall targets met" if ok else "\nNOT all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
