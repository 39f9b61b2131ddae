"""wattsweep's orchestrator: the CLI and the Ray Tune sweep built from a spec."""
