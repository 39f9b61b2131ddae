"""What the Optuna study holds beyond states and values: objective names, every epoch, each trial's facts.

Read by anything that reads Optuna studies (``optuna-dashboard``, ``optuna.load_study``, Optuna's plots):

- metric names: ``study.set_metric_names`` with the objectives' metric names (``accuracy``, ``energy_j``);
- every epoch: a single-objective study gets each epoch's objective value as an intermediate value
  (``Trial.report(value, step=epoch)``), so Optuna's and the dashboard's learning curves draw it. Optuna
  (5.0) refuses ``Trial.report`` in a multi-objective study, and a multi-objective study holds no intermediate
  values (why not written through the storage instead: Optuna's samplers rely on it; TPE ranks a pruned trial by
  its last intermediate value with ``study.direction``, which raises in a multi-objective study, so a TPE sweep
  stopped at its first ask after its startup trials once a trial had been stopped). There every objective's
  values per epoch are the user attribute ``<metric>_by_epoch`` (a list, epoch 1 first), written once, when the
  trial ends (why: rewriting the growing lists at every epoch cost the driver per report and the journal
  O(epochs^2) bytes per trial);
- each trial's facts as user attributes (``trial_facts``): energy, its components and source, whether it
  is an estimate, epochs run, wall time.

The one place that reaches into Optuna's private attributes for this (``_storage``, ``_trial_id``): see
``_storage_of``; tests/orchestrator/test_optuna_study.py pins the behaviour relied on.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.storages.journal._storage import JournalOperation as _JournalOp

from search_spaces import SpecError
from search_spaces._check import redact_url
from trainables import metrics as m

# why these: what tells two trials' energy figures apart (source, estimate, attribution) and what they cost
FACT_KEYS: tuple[str, ...] = (
    m.ENERGY_J,
    m.DYNAMIC_ENERGY_J,
    m.ENERGY_SOURCE,
    m.ENERGY_ESTIMATED,
    *(name for _, j, s in m.ENERGY_COMPONENTS for name in (j, s)),
    m.ENERGY_ATTRIBUTION,
    m.GPU_MODEL,
    m.TIME_S,
    m.PARAMS,
    m.FLOPS,
    m.NODE_ID,
)
BY_EPOCH_SUFFIX = "_by_epoch"
STORAGE_TIMEOUT_S = 30.0  # a storage that does not answer within this is refused before Ray starts


def name_objectives(study: optuna.Study, metrics: Sequence[str]) -> None:
    """Name the study's objectives after their metrics, and say how epochs are stored (a study user attribute)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(metrics))
    if len(metrics) > 1:
        study.set_user_attr(
            "intermediate_values",
            f"per epoch: {metrics[0]} (Optuna's Trial.report is single-objective only); every objective per "
            f"epoch in each trial's user attributes {', '.join(x + BY_EPOCH_SUFFIX for x in metrics)}, written "
            "when the trial ends",
        )


def _storage_of(trial: optuna.Trial) -> tuple[optuna.storages.BaseStorage, int]:
    """The trial's storage and id. why private attributes: ``optuna.Trial`` exposes neither, and the storage's
    public ``set_trial_intermediate_value`` is the only way to store an epoch in a multi-objective study."""
    return trial.study._storage, trial._trial_id


def epoch_point(result: Mapping[str, Any], metrics: Sequence[str], seen: dict[str, list]) -> tuple[int, float] | None:
    """(epoch, first objective's value) of one epoch's result, after adding its objective values to ``seen`` (this
    trial's values so far, per metric; index = epoch - 1; a retried trial's repeated epoch replaces); None for a
    result that is no epoch of the contract (none has come without one) or has no finite first objective."""
    epoch = result.get(m.EPOCH)
    values = {x: _finite(result.get(x)) for x in metrics}
    first = values[metrics[0]]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1 or first is None:
        return None
    for x, v in values.items():
        series = seen.setdefault(x, [])
        del series[epoch - 1 :]
        series.extend([None] * (epoch - 1 - len(series)) + [v])
    return epoch, first


def record_epoch(
    trial: optuna.Trial,
    result: Mapping[str, Any],
    metrics: Sequence[str],
    seen: dict[str, list],
    attrs: Mapping[str, Any] | None = None,
    *,
    ended: bool = False,
) -> None:
    """Store one epoch's objective values in ``trial`` (see the module docstring), and ``attrs`` as more user
    attributes with them; ``ended``: the trial's last write, with its ``<metric>_by_epoch`` series (a study of
    several objectives). ``seen``: as ``epoch_point``."""
    point = epoch_point(result, metrics, seen)
    attrs = dict(attrs or {})
    if point is not None and len(metrics) == 1:
        with warnings.catch_warnings():  # why: a retried trial repeats its epochs; Optuna keeps a step's first value
            warnings.filterwarnings("ignore", message=".*is already reported", category=UserWarning)
            trial.report(point[1], step=point[0])
    if ended and len(metrics) > 1 and seen:
        attrs |= {x + BY_EPOCH_SUFFIX: list(seen[x]) for x in metrics if x in seen}
    if attrs:
        write_trial(trial, attrs)


def write_trial(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Set ``attrs`` as ``trial``'s user attributes, in one write when the study is a journal file (a run's own
    study), one write each otherwise.

    why one write: each of Optuna's journal writes takes the file's lock and fsyncs it; a trial's end wrote ~18
    of them (its facts), every epoch 3, which made the Optuna journal the driver's largest cost of its own at
    thousands of trials (benchmarks/RESULTS.md, "Scale"). The journal's own log records are appended, several in
    one ``append_logs`` call, exactly as ``JournalStorage.set_trial_user_attr`` appends them one at a time
    (pinned in tests/orchestrator/test_optuna_study.py).
    """
    storage, trial_id = _storage_of(trial)
    if len(attrs) > 1 and _journal_parts(storage):
        op = _JournalOp.SET_TRIAL_USER_ATTR
        with storage._thread_lock:  # type: ignore[attr-defined]
            worker = storage._replay_result.worker_id  # type: ignore[attr-defined]
            logs = [
                {"op_code": op, "worker_id": worker, "trial_id": trial_id, "user_attr": {k: v}}
                for k, v in attrs.items()
            ]
            storage._backend.append_logs(logs)  # type: ignore[attr-defined]
            storage._sync_with_backend()  # type: ignore[attr-defined]
    else:
        for k, v in attrs.items():
            storage.set_trial_user_attr(trial_id, k, v)
    cached = getattr(trial, "_cached_frozen_trial", None)  # why: what trial.user_attrs shows, as set_user_attr does
    if cached is not None:
        cached.user_attrs.update(attrs)


def _journal_parts(storage: Any) -> bool:
    """Whether ``storage`` is a JournalStorage with the parts ``write_trial`` appends through."""
    return isinstance(storage, optuna.storages.JournalStorage) and all(
        hasattr(storage, a) for a in ("_thread_lock", "_replay_result", "_backend", "_sync_with_backend")
    )


def trial_facts(result: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of a trial's last result worth a user attribute (numbers finite, text short; None left out)."""
    out: dict[str, Any] = {}
    for key in FACT_KEYS:
        v = result.get(key)
        if isinstance(v, bool) or (isinstance(v, str) and len(v) <= 200):
            out[key] = v
        elif _finite(v) is not None:
            out[key] = float(v) if isinstance(v, float) else v
    return out


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def open_storage(url: str, study_name: str, *, field: str = "--optuna-storage") -> None:
    """Check, before Ray starts, that Optuna opens ``url`` (creating its tables) and holds no study named
    ``study_name`` (a new run must not add its trials to another run's study). SpecError naming ``field``
    otherwise; the URL and the driver's message are shown with credentials masked."""
    from orchestrator.storage import _bounded

    allowed = "an Optuna storage URL this machine can open (the database reachable, its driver installed)"

    def probe() -> list[str]:
        try:
            storage = optuna.storages.RDBStorage(url)
            return [s.study_name for s in storage.get_all_studies()]
        except Exception as e:  # why broad: SQLAlchemy, its drivers and Optuna each raise their own
            raise ValueError(redact_url(f"{type(e).__name__}: {e}").splitlines()[0][:300]) from None

    names = _bounded(probe, field, redact_url(url), allowed, timeout_s=STORAGE_TIMEOUT_S)
    if study_name in names:
        raise SpecError("--name", study_name, f"a name with no study in {redact_url(url)} yet (pick another --name)")
