"""Detectors, one module per paper, registered by name (see `base`).

Import order registers them; `available_methods()` lists what is importable.
"""

from highlighter.methods.base import (  # noqa: F401
    Detector,
    TrainReport,
    available_methods,
    create_method,
    load_method,
    register_method,
)

# Built-in methods register themselves on import. Each line is added by the
# module's author; keep them sorted.
