"""Tune's driver bookkeeping while a sweep runs (orchestrator.tune_driver), on Tune's real classes."""

from __future__ import annotations

from types import SimpleNamespace

from ray.train._internal.session import _TrainingResult
from ray.tune import PlacementGroupFactory
from ray.tune.execution.experiment_state import _ExperimentCheckpointManager
from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment.trial import Trial
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


def _trial(config: dict[str, int]) -> Trial:
    trial = Trial("train", stub=True, config=config, placement_group_factory=PlacementGroupFactory([{"CPU": 1}]))
    trial.create_placement_group_factory()  # what Tune does before it runs a trial
    return trial


def test_a_finished_trials_state_is_kept_packed_by_the_controller_while_a_sweep_runs() -> None:
    with lean_tune_driver(["accuracy"]):
        running, finished = _trial({"x": 1}), _trial({"x": 2})
        for trial in (running, finished):
            for step, accuracy in enumerate((0.5, 0.7), start=1):
                result = {"accuracy": accuracy, "loss": 0.3, "epoch": step, "training_iteration": step, "config": {}}
                trial.update_last_result(dict(result, trial_id=trial.trial_id, done=step == 2))
        finished.run_metadata.checkpoint_manager.register_checkpoint(_TrainingResult(None, dict(result)))
        finished.set_status(Trial.TERMINATED)
        assert finished.run_metadata.metric_n_steps == {}  # the windows go, their averages stay
        cut = {"accuracy": 0.7, "epoch": 2, "training_iteration": 2}
        assert finished.last_result == dict(cut, trial_id=finished.trial_id, done=True)  # the kept keys only
        assert finished.run_metadata.checkpoint_manager.latest_checkpoint_result.metrics == cut
        assert running.last_result["loss"] == 0.3  # a running trial's result stays whole
        assert finished.run_metadata.metric_analysis["accuracy"]["last-5-avg"] == 0.6
        assert running.run_metadata.metric_n_steps["accuracy"]["5"]  # a running trial keeps them
        # Tune's controller, as its snapshot calls it: the trials marked since the last snapshot are serialised
        controller = SimpleNamespace(_trials_to_cache={running, finished}, _trial_metadata={})
        written = TuneController._get_trial_checkpoints(controller)
        assert finished._state_json is None and finished.run_metadata._cached_json is None  # the trial keeps none
        assert running._state_json is not None  # a running trial's cache stays (Tune's rule)
        kept = controller._trial_metadata[finished.trial_id]
        assert sum(map(len, kept)) < sum(map(len, written[finished.trial_id])) / 2  # compressed
        assert TuneController._get_trial_checkpoints(controller) == written  # the next snapshot: the same text
        restored = Trial.from_json_state(written[finished.trial_id][0], stub=True)
        restored.restore_run_metadata(written[finished.trial_id][1])
        assert restored.status == Trial.TERMINATED and restored.config == {"x": 2}
        assert restored.run_metadata.metric_analysis["accuracy"]["max"] == 0.7
    after, controller = _trial({"x": 3}), SimpleNamespace(_trial_metadata={})
    after.set_status(Trial.TERMINATED)
    controller._trials_to_cache = {after}
    assert TuneController._get_trial_checkpoints(controller)[after.trial_id] == after.get_json_state()
    assert after._state_json is not None and controller._trial_metadata[after.trial_id][0] == after._state_json
