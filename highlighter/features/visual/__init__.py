"""Visual backbones (registered on import): i3d (default), r3d, swin, efficientnet-lite0 (offline)."""

from highlighter.features.visual import efficientnet, i3d, r3d, swin  # noqa: F401
