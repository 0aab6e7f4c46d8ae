"""The command line: `ganlab train` (train_command.py; its Hydra app is training/launch.py) and the other subcommands (main.py)."""

from ganlab.cli.main import main

__all__ = ["main"]
