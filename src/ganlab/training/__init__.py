"""The training loop and the parts it orders (see trainer.py)."""
