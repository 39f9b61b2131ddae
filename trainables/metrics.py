"""The metric contract: the names every trial reports, every epoch.

The search (objectives), the scheduler, the run recorder and the report read
these names and nothing else. Units are in the names (``_j`` joules, ``_s``
seconds, ``_ms`` milliseconds, ``_w`` watts).
"""

from __future__ import annotations

from typing import Final

# Reported every epoch by every trial.
EPOCH: Final = "epoch"  # 1-based count of finished epochs
ACCURACY: Final = "accuracy"  # validation accuracy in [0, 1]; the one the search optimises
TEST_ACCURACY: Final = "test_accuracy"  # held-out test accuracy; reported, never used to select
LOSS: Final = "loss"  # mean training cross-entropy over the epoch
VAL_LOSS: Final = "val_loss"  # validation cross-entropy
ENERGY_J: Final = "energy_j"  # cumulative energy of the trial so far, joules
DYNAMIC_ENERGY_J: Final = "dynamic_energy_j"  # energy_j minus idle power x time (== energy_j when no baseline)
ENERGY_SOURCE: Final = "energy_source"  # where energy_j came from: nvml-counter, nvml-power, rapl, estimated-cpu
ENERGY_ESTIMATED: Final = "energy_estimated"  # True when energy_j is an estimate, not a measurement
TIME_S: Final = "time_s"  # cumulative training wall time of the trial, seconds
PARAMS: Final = "params"  # non-zero parameters of the model as it is now
FLOPS: Final = "flops"  # FLOPs of one forward pass of one sample, dense architecture
EFFECTIVE_FLOPS: Final = "effective_flops"  # FLOPs one forward pass needs after pruning
SPARSITY: Final = "sparsity"  # fraction of prunable weights that are zero / removed, in [0, 1]
BUDGET_EPOCHS: Final = "budget_epochs"  # epochs this trial was configured to run

# Energy by component (issue 15). energy_j is the sum of the measured components (or, when nothing could be
# measured, of the estimated ones); None where the trial's machine has no such reading (no GPU, no RAPL DRAM).
ENERGY_GPU_J: Final = "energy_gpu_j"  # the trial's GPUs (its share of a shared GPU), cumulative joules
ENERGY_CPU_J: Final = "energy_cpu_j"  # the CPU package(s): the trial's share of RAPL's, or the CPU-time estimate
ENERGY_DRAM_J: Final = "energy_dram_j"  # DRAM (RAPL's dram zone), the trial's share
ENERGY_GPU_SOURCE: Final = "energy_gpu_source"  # nvml-counter / nvml-power
ENERGY_CPU_SOURCE: Final = "energy_cpu_source"  # rapl / estimated-cpu
ENERGY_DRAM_SOURCE: Final = "energy_dram_source"  # rapl
ENERGY_COMPONENTS: Final[tuple[tuple[str, str, str], ...]] = (
    ("gpu", ENERGY_GPU_J, ENERGY_GPU_SOURCE),
    ("cpu", ENERGY_CPU_J, ENERGY_CPU_SOURCE),
    ("dram", ENERGY_DRAM_J, ENERGY_DRAM_SOURCE),
)
# exclusive, or shared:<rule> (a GPU or CPU package shared with other trials: sm-utilisation, time, cpu-time)
ENERGY_ATTRIBUTION: Final = "energy_attribution"
GPU_MODEL: Final = "gpu_model"  # NVML's name of the trial's GPU ("NVIDIA A10G"); absent on CPU trials

EPOCH_METRICS: Final[tuple[str, ...]] = (
    EPOCH,
    ACCURACY,
    TEST_ACCURACY,
    LOSS,
    VAL_LOSS,
    ENERGY_J,
    DYNAMIC_ENERGY_J,
    ENERGY_SOURCE,
    ENERGY_ESTIMATED,
    TIME_S,
    PARAMS,
    FLOPS,
    EFFECTIVE_FLOPS,
    SPARSITY,
    BUDGET_EPOCHS,
    ENERGY_GPU_J,
    ENERGY_CPU_J,
    ENERGY_DRAM_J,
    ENERGY_GPU_SOURCE,
    ENERGY_CPU_SOURCE,
    ENERGY_DRAM_SOURCE,
    ENERGY_ATTRIBUTION,
    GPU_MODEL,
)

# Reported every epoch by the Ray adapter only (not by an in-process `trial`).
NODE_ID: Final = "node_id"  # the Ray node the epoch ran on (a retried trial may move)
RAY_METRICS: Final[tuple[str, ...]] = (NODE_ID,)

# Reported once, with the last epoch only (lists / dicts, kept small).
CONFUSION_MATRIX: Final = "confusion_matrix"  # list[list[int]] on the test split, rows = true class
LAYER_FLOPS: Final = "layer_flops"  # {module name: forward FLOPs per sample}
POWER_TRACE: Final = "power_trace"  # {"t_s": [...], "watts": [...], "source": str}, down-sampled

ENERGY_PROVENANCE: Final = "energy_provenance"  # the meter's provenance: backend, devices, temperatures...
INFER_ENERGY_J_PER_1K: Final = "infer_energy_j_per_1k"  # energy of 1,000 single-sample inferences, joules
INFER_LATENCY_MS: Final = "infer_latency_ms"  # mean latency of one single-sample inference, ms

FINAL_METRICS: Final[tuple[str, ...]] = (
    CONFUSION_MATRIX,
    LAYER_FLOPS,
    POWER_TRACE,
    ENERGY_PROVENANCE,
    INFER_ENERGY_J_PER_1K,
    INFER_LATENCY_MS,
)

# Metrics a spec may name as an objective, with the direction that makes sense by default.
OBJECTIVE_METRICS: Final[dict[str, str]] = {
    ACCURACY: "max",
    ENERGY_J: "min",
    DYNAMIC_ENERGY_J: "min",
    TIME_S: "min",
    PARAMS: "min",
    FLOPS: "min",
    EFFECTIVE_FLOPS: "min",
    LOSS: "min",
    VAL_LOSS: "min",
    INFER_ENERGY_J_PER_1K: "min",
    INFER_LATENCY_MS: "min",
}
