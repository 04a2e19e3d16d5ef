"""Detectors, one module per paper, registered by name (see `base`).

The built-in methods register themselves when first needed
(`base.load_builtin_methods`), so importing e.g. `methods.shipped` stays cheap.
"""

from highlighter.methods.base import (  # noqa: F401
    Detector,
    TrainReport,
    available_methods,
    create_method,
    load_method,
    register_method,
)
