"""The command line: `ganlab train` (train_app.py, a Hydra app) and the other subcommands (main.py)."""

from ganlab.cli.main import main

__all__ = ["main"]
