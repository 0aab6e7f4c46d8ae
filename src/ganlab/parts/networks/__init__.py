"""Generators and discriminators. Each module registers its networks under the names a config picks
(`generator=dcgan`), built from their config node and the sample shape; D returns one raw score per
sample. conditional.py wraps any of them for a class-conditional GAN."""
