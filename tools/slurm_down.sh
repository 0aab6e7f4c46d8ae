#!/usr/bin/env bash
# Stop the one-node SLURM cluster that tools/slurm_up.sh started (munged is left running).
pkill -x slurmd 2>/dev/null || true
pkill -x slurmctld 2>/dev/null || true
