"""Trainables: data, models, pruning, FLOPs, energy and the training loop of one trial.

Nothing here imports the orchestrator; the Ray adapter (``ray_trainable``) imports Ray lazily.
"""
