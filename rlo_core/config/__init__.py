"""Typed configuration: schema validation and YAML profiles."""

from rlo_core.config.profiles import (
    delete_profile,
    find_profile,
    list_profiles,
    load_profile,
    resolve_config,
    save_profile,
)
from rlo_core.config.schema import to_dict, validate_options

__all__ = ["delete_profile", "find_profile", "list_profiles", "load_profile", "resolve_config",
           "save_profile", "to_dict", "validate_options"]
