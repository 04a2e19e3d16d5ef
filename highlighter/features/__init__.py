"""Feature extraction: backbones (registered by name), weights manager, feature files.

Importing this package registers the built-in backbones.
"""

from highlighter.features.base import (  # noqa: F401
    Backbone,
    BackboneSpec,
    available_backbones,
    create_backbone,
    register_backbone,
)

# Built-in backbones register themselves on import (one line per module, sorted).
from highlighter.features import audio  # noqa: F401
from highlighter.features import visual  # noqa: F401
