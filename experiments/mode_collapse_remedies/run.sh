#!/bin/bash
# Remedies against mode collapse, each against the plain BCE GAN on the same seeds (README.md here):
# PacGAN2 (discriminator.pack=2), StyleGAN's minibatch std, RpGAN + R1 + R2 (R3GAN's recipe, +exp=r3gan).
# Ring and grid: +exp=mode_collapse_ring, seeds 1-5; Fashion-MNIST: preset=cpu on 10,000 images, seeds 1-3.
# Each arm is a sweep; `ganlab compare` over all their jobs pairs every remedy with the plain run of its seed.
set -e
OUT=${OUT:-outputs/studies/mode_collapse_remedies}
study() {  # study NAME SEEDS BASE_OVERRIDES... : the four arms, then the comparison
  local name=$1 seeds=$2; shift 2
  ganlab train -m "$@" seed=$seeds hydra.sweep.dir=$OUT/$name/plain
  ganlab train -m "$@" seed=$seeds discriminator.pack=2 hydra.sweep.dir=$OUT/$name/pack2
  ganlab train -m "$@" seed=$seeds discriminator.minibatch_std=true hydra.sweep.dir=$OUT/$name/minibatch_std
  ganlab train -m "$@" seed=$seeds loss=rpgan loss.r1_gamma=1 loss.r2_gamma=1 'optim.betas=[0,0.99]' \
    discriminator.norm=none hydra.sweep.dir=$OUT/$name/rpgan_r1_r2
  ganlab compare $OUT/$name/*/*/ --out $OUT/$name/compare --force | tee $OUT/$name/compare.txt
}
SECONDS=0
study ring8 1,2,3,4,5 +exp=mode_collapse_ring data=ring8 trainer.progress=false
echo "ring8: $SECONDS s"
study grid25 1,2,3,4,5 +exp=mode_collapse_ring data=grid25 trainer.progress=false
echo "ring8 + grid25: $SECONDS s"
study fashion_mnist 1,2,3 data=fashion_mnist preset=cpu data.limit=10000 trainer.progress=false
echo "all: $SECONDS s"
