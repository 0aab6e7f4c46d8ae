"""ganlab: a config-driven GAN experiment runner."""

from pathlib import Path

__version__ = "0.1.0"

# conf/ sits at the repository root, beside src/ (the project is installed with `pip install -e .`).
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
