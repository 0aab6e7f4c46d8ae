#!/usr/bin/env bash
# A/A: the same 8 seeds of the ring MLP GAN trained solo (one process each, one after another) and as one
# stack of 8 (trainer.stack=8), one thread each way; compare pairs them by seed (the "swept" key is
# trainer.stack). Expect: no difference beyond the noise.
set -euo pipefail
OUT=${OUT:-outputs/studies/stacked_vs_solo}
SEEDS=${SEEDS:-1,2,3,4,5,6,7,8}  # SEEDS=9,10,...,16 PART=2 adds a second sweep each way
PART=${PART:-}
COMMON=(data=ring8 generator=mlp discriminator=mlp trainer.epochs=10 trainer.threads=1 trainer.progress=false
        seed=$SEEDS hydra.launcher.n_jobs=1)
time ganlab train -m "${COMMON[@]}" hydra.sweep.dir="$OUT/solo$PART"
time ganlab train -m "${COMMON[@]}" trainer.stack=8 hydra.sweep.dir="$OUT/stacked$PART"
python experiments/stacked_vs_solo/aa.py "$OUT"
