"""The run manifest (``wattsweep.json``): what a run directory records about its sweep, as one frozen type.

It holds the spec as the user wrote it (``spec``) and every CLI override applied to it (``overrides``), so that a
resumed sweep runs by exactly the settings the first driver used (its ``--energy-budget``, ``--tensorboard`` and
energy settings included), and the run's status and times. Whatever else the sweep records about itself (versions,
host, resources, slots, the idle baseline, remote storage) is kept in ``facts`` and written beside them, flat, as
runs have always been; old manifests without ``overrides`` still read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

RunStatus = Literal["running", "finished", "failed", "interrupted"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "finished", "failed", "interrupted")
_OWN = ("name", "spec", "overrides", "status", "created_at", "finished_at")


class ManifestError(ValueError):
    """A manifest that is not a JSON object with a name and a spec."""


@dataclass(frozen=True)
class RunManifest:
    """One run's manifest. ``status``: ``running`` until the driver ends it (``finished``, ``failed`` or
    ``interrupted``); a ``running`` run whose driver is gone was killed (``resume`` continues it)."""

    name: str
    spec: Mapping[str, Any]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    status: RunStatus = "running"
    created_at: str | None = None
    finished_at: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``wattsweep.json`` (facts flat beside the manifest's own keys)."""
        own = {k: getattr(self, k) for k in _OWN}
        own["spec"], own["overrides"] = dict(self.spec), dict(self.overrides)
        return {**{k: v for k, v in self.facts.items() if k not in _OWN}, **own}

    @classmethod
    def from_dict(cls, raw: Any) -> RunManifest:
        """Read a manifest; ManifestError naming what is wrong when it is not one."""
        if not isinstance(raw, Mapping):
            raise ManifestError(f"the manifest is a {type(raw).__name__}, not a JSON object")
        name, spec = raw.get("name"), raw.get("spec")
        if not isinstance(name, str) or not name:
            raise ManifestError(f"the manifest's name is {name!r}, not a run name")
        if not isinstance(spec, Mapping):
            raise ManifestError(f"the manifest's spec is a {type(spec).__name__}, not a mapping")
        overrides = raw.get("overrides")
        if overrides is None:  # why: runs made before overrides were recorded kept these few at the top level
            overrides = {"name": name, "num_samples": raw.get("num_samples"), "max_epochs": raw.get("max_epochs")}
            seed = (raw.get("sampler") or {}).get("seed") if isinstance(raw.get("sampler"), Mapping) else None
            overrides = {k: v for k, v in {**overrides, "seed": seed}.items() if v is not None}
        if not isinstance(overrides, Mapping):
            raise ManifestError(f"the manifest's overrides are a {type(overrides).__name__}, not a mapping")
        status = raw.get("status", "running")
        if status not in RUN_STATUSES:
            raise ManifestError(f"the manifest's status is {status!r}, not one of {', '.join(RUN_STATUSES)}")
        return cls(
            name=name,
            spec=dict(spec),
            overrides=dict(overrides),
            status=status,
            created_at=raw.get("created_at"),
            finished_at=raw.get("finished_at"),
            facts={k: v for k, v in raw.items() if k not in _OWN},
        )

    def with_changes(self, **changes: Any) -> RunManifest:
        """A copy with some of its own fields, or facts (any other key), changed."""
        own = {k: v for k, v in changes.items() if k in _OWN}
        facts = {k: v for k, v in changes.items() if k not in _OWN}
        return replace(self, **own, facts={**self.facts, **facts}) if facts else replace(self, **own)
