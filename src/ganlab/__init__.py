"""ganlab: a config-driven GAN experiment runner."""

from pathlib import Path

__version__ = "0.1.0"

# The config groups ship inside the package (a wheel installed anywhere has them); the repository's
# top-level conf/ is a link to this folder.
CONF_DIR = Path(__file__).resolve().parent / "conf"
