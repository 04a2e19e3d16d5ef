"""highlighter: find the highlights in raw video and cut them out."""

__version__ = "0.1.0"
