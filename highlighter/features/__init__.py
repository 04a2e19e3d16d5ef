"""Feature extraction: backbones (registered by name), weights manager, feature files.

The built-in backbones (``visual/``, ``audio/``) are registered lazily by module
(`base.BACKBONES`), so importing the weights manager, the CLI, or listing backbone
names does not pay for torch. The default backbones are defined here once.
"""

from highlighter.features.base import (  # noqa: F401
    DEFAULT_AUDIO,
    DEFAULT_VISUAL,
    Backbone,
    BackboneSpec,
    available_backbones,
    backbone_names,
    create_backbone,
    register_backbone,
    unregister_backbone,
)
