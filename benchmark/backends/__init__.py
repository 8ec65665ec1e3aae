"""Backends run a plan's cells stage by stage: in this process, on Ray Tune, or as SLURM job arrays."""
