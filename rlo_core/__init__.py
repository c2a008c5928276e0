"""Core library of rlo: losses, data, models, pipelines and run tracking.

Importing this package is cheap: torch, timm and transformers are imported by the
submodules that need them, so the command-line interface starts quickly.
"""

__version__ = "0.1.0"
