"""Audio backbones: PANN CNN14 (2048-d), Mockingjay (768-d), YAMNet TFLite (1024-d).

Each module registers its backbone and its published checkpoint (weights manager) on
import, which the registry (`features.base.BACKBONES`) does when a backbone is first
used; the log-mel front ends are our own (mel.py), matching what each model was
trained with.
"""
