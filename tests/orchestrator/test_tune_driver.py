"""Tune's driver bookkeeping while a sweep runs (orchestrator.tune_driver), on Tune's real classes."""

from __future__ import annotations

from ray.tune.execution.experiment_state import _ExperimentCheckpointManager
from ray.tune.trainable.metadata import _TrainingRunMetadata

from orchestrator.tune_driver import lean_tune_driver


def _manager() -> _ExperimentCheckpointManager:
    # num_to_keep=1, as a sweep runs: Tune would force a snapshot after every trial checkpoint
    return _ExperimentCheckpointManager(storage=None, checkpoint_period="auto", sync_every_n_trial_checkpoints=1)


def test_no_snapshot_is_forced_per_trial_checkpoint_while_a_sweep_runs_and_tune_is_restored_after() -> None:
    with lean_tune_driver(["accuracy"]):
        inside = _manager()
        inside.on_trial_checkpoint("trial")
        assert inside._should_force_sync_up is False
    after = _manager()
    after.on_trial_checkpoint("trial")
    assert after._should_force_sync_up is True  # Tune's own rule again outside a sweep


def test_tune_keeps_statistics_of_the_objectives_and_the_epoch_only_while_a_sweep_runs() -> None:
    result = {"accuracy": 0.5, "energy_j": 2.0, "epoch": 1, "training_iteration": 1, "loss": 0.7, "sparsity": 0.1}
    with lean_tune_driver(["accuracy", "energy_j"]):
        meta = _TrainingRunMetadata()
        for key, value in result.items():
            meta.update_metric(key, value, step=1)
        meta.update_metric("accuracy", 0.7, step=2)
    assert set(meta.metric_analysis) == {"accuracy", "energy_j", "epoch", "training_iteration"}
    assert meta.metric_analysis["accuracy"]["max"] == 0.7 and meta.metric_analysis["accuracy"]["avg"] == 0.6
    outside = _TrainingRunMetadata()
    outside.update_metric("loss", 0.7)
    assert set(outside.metric_analysis) == {"loss"}


def test_a_finished_trials_state_is_serialised_per_snapshot_not_kept_while_a_sweep_runs() -> None:
    from ray.tune import PlacementGroupFactory
    from ray.tune.experiment.trial import Trial

    with lean_tune_driver(["accuracy"]):
        trial = Trial("train", stub=True, config={"x": 1}, placement_group_factory=PlacementGroupFactory([{"CPU": 1}]))
        trial.create_placement_group_factory()  # what Tune does before it runs a trial
        for step, value in enumerate((0.5, 0.7), start=1):
            trial.run_metadata.update_metric("accuracy", value, step=step)
        trial.get_json_state()
        assert trial._state_json is not None  # a running trial's state stays cached (Tune's rule)
        trial.set_status(Trial.TERMINATED)
        assert trial.run_metadata.metric_n_steps == {}  # the windows go, their averages stay
        assert trial.run_metadata.metric_analysis["accuracy"]["last-5-avg"] == 0.6
        state, metadata = trial.get_json_state()
        assert trial._state_json is None and trial.run_metadata._cached_json is None
        restored = Trial.from_json_state(state, stub=True)
        restored.restore_run_metadata(metadata)
        assert restored.status == Trial.TERMINATED and restored.config == {"x": 1}
        assert restored.run_metadata.metric_analysis["accuracy"]["max"] == 0.7
        assert trial.get_json_state() == (state, metadata)  # serialised again, the same
    after = Trial("train", stub=True)
    after.set_status(Trial.TERMINATED)
    after.get_json_state()
    assert after._state_json is not None  # Tune's own caching again outside a sweep
