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
from highlighter.methods import baselines  # noqa: F401,E402
from highlighter.methods import avr, chd  # noqa: F401,E402
from highlighter.methods import rasl  # noqa: F401,E402
from highlighter.methods import hpcl  # noqa: F401,E402
