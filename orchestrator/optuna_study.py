"""What the Optuna study holds beyond states and values: objective names, every epoch, each trial's facts.

Read by anything that reads Optuna studies (``optuna-dashboard``, ``optuna.load_study``, Optuna's plots):

- metric names: ``study.set_metric_names`` with the objectives' metric names (``accuracy``, ``energy_j``);
- every epoch: a single-objective study gets each epoch's objective value as an intermediate value
  (``Trial.report(value, step=epoch)``), so Optuna's and the dashboard's learning curves draw it. Optuna
  (5.0) refuses ``Trial.report`` in a multi-objective study, and optuna-dashboard (0.21) draws its
  intermediate-values chart only for single-objective studies; there the first objective's value per epoch
  is stored through the storage's ``set_trial_intermediate_value`` (shown on each trial's page), and every
  objective's values per epoch as the user attribute ``<metric>_by_epoch`` (a list, epoch 1 first);
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
            f"epoch in each trial's user attributes {', '.join(x + BY_EPOCH_SUFFIX for x in metrics)}",
        )


def _storage_of(trial: optuna.Trial) -> tuple[optuna.storages.BaseStorage, int]:
    """The trial's storage and id. why private attributes: ``optuna.Trial`` exposes neither, and the storage's
    public ``set_trial_intermediate_value`` is the only way to store an epoch in a multi-objective study."""
    return trial.study._storage, trial._trial_id


def record_epoch(trial: optuna.Trial, result: Mapping[str, Any], metrics: Sequence[str], seen: dict[str, list]) -> None:
    """Store one epoch's objective values in ``trial`` (see the module docstring). ``seen``: this trial's
    values so far, per metric, updated here (index = epoch - 1; a retried trial's repeated epoch replaces)."""
    epoch = result.get(m.EPOCH)
    values = {x: _finite(result.get(x)) for x in metrics}
    first = values[metrics[0]]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1 or first is None:
        return  # why: a result that is no epoch of the contract (none has come without one) is not a point
    for x, v in values.items():
        series = seen.setdefault(x, [])
        del series[epoch - 1 :]
        series.extend([None] * (epoch - 1 - len(series)) + [v])
    if len(metrics) == 1:
        with warnings.catch_warnings():  # why: a retried trial repeats its epochs; Optuna keeps a step's first value
            warnings.filterwarnings("ignore", message=".*is already reported", category=UserWarning)
            trial.report(first, step=epoch)
        return
    storage, trial_id = _storage_of(trial)
    storage.set_trial_intermediate_value(trial_id, epoch, first)
    for x in metrics:
        trial.set_user_attr(x + BY_EPOCH_SUFFIX, list(seen[x]))


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
