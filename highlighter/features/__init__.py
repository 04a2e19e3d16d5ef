"""Feature extraction: backbones (registered by name), weights manager, feature files.

The built-in backbones (``visual/``, ``audio/``) register themselves when first
needed (`base.load_builtin_backbones`), so importing the weights manager or the
CLI does not pay for torch.
"""

from highlighter.features.base import (  # noqa: F401
    Backbone,
    BackboneSpec,
    available_backbones,
    create_backbone,
    register_backbone,
)
