"""Visual backbones: i3d (default), r3d, swin, efficientnet-lite0 (offline).

Each module registers its backbone (and its published checkpoint) on import; the
registry (`features.base.BACKBONES`) imports a module only when its backbone is
used, so nothing is imported here.
"""
