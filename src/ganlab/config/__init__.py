"""What a run is: its schema (schema.py), how it is composed and checked (validate.py), advice for
a mistyped override (advice.py) and the guards on a user's config files (trust.py)."""

from ganlab.config.schema import TrainConfig, compose_train, path_safe, register_configs
from ganlab.config.validate import holds_images, is_conditional, validate
from ganlab.parts.registry import ConfigError

__all__ = ["ConfigError", "TrainConfig", "compose_train", "holds_images", "is_conditional", "path_safe",
           "register_configs", "validate"]
