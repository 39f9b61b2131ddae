"""``export``: a run's chosen trials as deployable models (ONNX, TorchScript, int8 ONNX), measured as they will run.

For each chosen complete trial, its final model (``final_model.pt``, saved by the trainable contract beside the
final checkpoint: structurally pruned models as the smaller network, unstructured masks folded here) is exported,
run and measured on this machine, and described in ``model_card.json``. Everything is written into a staging
directory inside the output directory and renamed into place only when every trial succeeded: a bad input (exit 2)
or a failure (exit 1) leaves nothing behind.

Layout: ``<out>/<trial_id>/{model.onnx, model.int8.onnx, model.torchscript.pt, model_card.json}``; ``<out>``
defaults to ``RUN_DIR/exports`` (where the report finds them), ``exports/<run name>`` in the working directory for a
run on remote storage (also uploaded to ``<uri>/exports``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.export._convert import ExportFailure
from orchestrator.export._select import FORMATS, choose_trials, final_model_file, parse_formats
from rundir import TUNE_DIR, NotARunError, RunRecord, is_run_dir, read_run
from rundir.layout import EXPORTS_DIR
from search_spaces import SpecError

__all__ = ["FORMATS", "ExportFailure", "ExportResult", "export_run", "summary_lines"]


@dataclass(frozen=True)
class ExportResult:
    """Where the artifacts went (``out_dir/<trial_id>/``) and each trial's model card, in export order."""

    out_dir: Path
    cards: list[dict[str, Any]] = field(default_factory=list)


def export_run(
    run: str | os.PathLike[str],
    *,
    trial_ids: Sequence[str] = (),
    front: bool = False,
    formats: str | Sequence[str] = FORMATS,
    out: str | os.PathLike[str] | None = None,
    trust: bool = False,
) -> ExportResult:
    """Export the knee (default), the whole front (``front``) or the trials ``trial_ids`` of a run directory or a
    run's URI. ``formats``: any of ``onnx``, ``torchscript``, ``int8``. ``trust``: read a run this user did not
    create here (its final models are unpickled, which can run code).

    Bad input raises ``SpecError`` (naming the field, the value and what is allowed) before anything is written;
    a failure while exporting raises ``ExportFailure``; either way nothing is left half-written.
    """
    chosen = parse_formats(formats)
    if "://" in str(run):
        return _export_remote(str(run), trial_ids=trial_ids, front=front, formats=chosen, out=out, trust=trust)
    record = _read(Path(run))
    _check_trust(record, trust)
    ids = choose_trials(record, trial_ids=trial_ids, front=front)
    target = Path(out) if out is not None else record.run_dir / EXPORTS_DIR
    return _export_local(record, ids, chosen, target)


def _read(run_dir: Path) -> RunRecord:
    try:
        record = read_run(run_dir)
    except NotARunError as e:
        raise SpecError("RUN_DIR", str(run_dir), f"a wattsweep run directory ({e})") from None
    if not is_run_dir(run_dir):
        raise SpecError("RUN_DIR", str(run_dir), "a wattsweep run directory (with wattsweep.json)")
    return record


def _check_trust(record: RunRecord, trust: bool) -> None:
    from rundir.trust import is_mine

    if not trust and not is_mine(record.run_dir, record.manifest):
        raise SpecError(
            "RUN_DIR",
            str(record.run_dir),
            "a run you created on this machine (export unpickles its final models, which can run code); "
            "add --trust to export one you trust from elsewhere",
        )


def _prepare_out(target: Path) -> tuple[Path, bool]:
    """(a fresh staging directory inside ``target``, whether ``target`` was created here). SpecError naming
    ``--out`` when it cannot be written."""
    created = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".export-", dir=target)), created
    except OSError as e:
        raise SpecError("--out", str(target), f"a directory this user can write ({e.strerror or e})") from None


def _export_local(record: RunRecord, ids: list[str], formats: tuple[str, ...], target: Path) -> ExportResult:
    from orchestrator.export._measure import open_meter
    from orchestrator.export._trial import export_trial

    finals = {tid: final_model_file(record.run_dir, tid) for tid in ids}  # why first: SpecErrors before writing
    staging, created = _prepare_out(target)
    cards = []
    try:
        with open_meter() as meter:
            for tid in ids:
                (staging / tid).mkdir()
                cards.append(export_trial(record, tid, finals[tid], formats, staging / tid, meter))
        _move_into_place(staging, target, ids)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(target, cards)


def _move_into_place(staging: Path, target: Path, ids: list[str]) -> None:
    """Rename each finished trial directory into ``target``; an earlier export of the same trial is replaced."""
    for tid in ids:
        old = target / tid
        if old.is_symlink() or old.is_file():
            old.unlink()
        elif old.exists():
            old.rename(staging / f"{tid}.replaced")
        (staging / tid).rename(old)


def _export_remote(
    uri: str,
    *,
    trial_ids: Sequence[str],
    front: bool,
    formats: tuple[str, ...],
    out: str | os.PathLike[str] | None,
    trust: bool,
) -> ExportResult:
    """Export from a run on remote storage: its records and the chosen trials' checkpoints are fetched into a
    temporary copy (the path ``report`` uses), exported into ``out``, and the exports uploaded to ``<uri>/exports``."""
    from orchestrator.storage import Mirror, download, parse_uri, redact, run_name

    remote = parse_uri(uri, field="RUN_DIR")
    name = run_name(remote)
    with tempfile.TemporaryDirectory(prefix="wattsweep-export-") as tmp:
        local = Path(tmp) / name
        download(remote, local)
        record = _read(local)
        _check_trust(record, trust)
        ids = choose_trials(record, trial_ids=trial_ids, front=front)
        for tid in ids:
            # why suppress: a trial without checkpoints is named by final_model_file, as for a local run
            with contextlib.suppress(SpecError):
                download(remote.child(TUNE_DIR, f"trial_{tid}"), local / TUNE_DIR / f"trial_{tid}")
        result = _export_local(record, ids, formats, Path(out) if out is not None else Path(EXPORTS_DIR) / name)
        for tid in ids:
            shutil.copytree(result.out_dir / tid, local / EXPORTS_DIR / tid)
        try:
            Mirror(local, remote).push(under=EXPORTS_DIR)
        except OSError as e:  # why: the artifacts are complete here; only the bucket's copy is missing
            print(f"wattsweep: warning: could not upload the exports to {remote.display_uri}: {redact(str(e))}")
    return result


def summary_lines(result: ExportResult) -> list[str]:
    """What the CLI prints: one line per artifact, then where they are."""
    head = f"{'trial':<10} {'format':<12} {'test acc':>9} {'vs torch':>9} {'params':>8} {'FLOPs':>10} {'KiB':>7}"
    lines = [head + f" {'ms/inference':>12} {'J per 1k':>9}  source"]
    for card in result.cards:
        for a in card["artifacts"]:
            acc = "-" if a["test_accuracy"] is None else f"{a['test_accuracy']:.4f}"
            pts = "-" if a["accuracy_change_points"] is None else f"{a['accuracy_change_points']:+.2f} pt"
            lines.append(
                f"{card['trial_id']:<10} {a['format']:<12} {acc:>9} {pts:>9} {a['params']:>8} {a['flops']:>10} "
                f"{a['bytes'] / 1024:>7.1f} {a['latency_ms']:>12.4f} {a['energy_j_per_1k']:>9.4f}  {a['energy_source']}"
            )
    estimated = any(a["energy_estimated"] for c in result.cards for a in c["artifacts"])
    if estimated:
        lines.append("energy: estimated from CPU time (no RAPL here); compare the figures with each other only")
    lines.append(f"exported {len(result.cards)} trial(s) to {result.out_dir} (model_card.json beside each)")
    return lines
