"""Detectors, one module per paper, registered by name (see `base`).

The built-in methods are registered lazily by module path, so importing this
package, listing method names or reading weights metadata imports no method
module and no torch.

Modules: `base` (the contract + registry), `config` (config building, ``--set``),
`data` (what detectors consume), `windows`, `torch_utils` (training-loop control),
`layers` (shared torch layers), `shipped` (where pretrained weights live),
`catalog` (what `highlighter methods list` shows), one module per method.
"""

from highlighter.methods.base import (  # noqa: F401
    BUILTIN_METHODS,
    DEFAULT_METHOD,
    METHODS,
    Detector,
    TrainReport,
    available_methods,
    create_method,
    load_method,
    method_class,
    register_method,
)
from highlighter.methods.catalog import MethodInfo, ShippedWeights, describe_methods  # noqa: F401
from highlighter.methods.data import SPLITS, VideoFeatures  # noqa: F401
