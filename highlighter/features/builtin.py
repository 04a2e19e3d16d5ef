"""The built-in backbones by name -> the module that registers each (and its checkpoint).

A plain table, read by both registries: `features.base.BACKBONES` (backbones) and
`features.weights.WEIGHTS` (their checkpoints). It lives apart so that neither of those two modules
needs the other at import time. The modules are imported on first use, so listing names or
`highlighter --help` does not import torch.
"""

from __future__ import annotations

BUILTIN_BACKBONES = {
    "efficientnet-lite0": "highlighter.features.visual.efficientnet",
    "efficientnet-lite0-motion": "highlighter.features.visual.motion",
    "i3d": "highlighter.features.visual.i3d",
    "logmel": "highlighter.features.audio.logmel",
    "mockingjay": "highlighter.features.audio.mockingjay",
    "panns": "highlighter.features.audio.panns",
    "r3d": "highlighter.features.visual.r3d",
    "swin": "highlighter.features.visual.swin",
    "yamnet": "highlighter.features.audio.yamnet",
}
BUILTIN_MODULES = tuple(sorted(set(BUILTIN_BACKBONES.values())))
