"""io stage: probing, frame decoding (decord / PyAV) and audio extraction.

See docs/ARCHITECTURE.md for the contracts; `video.py` documents the sampling rule.
"""

from highlighter.io.audio import Audio, iter_audio, load_audio
from highlighter.io.ffmpeg import ffmpeg_binary, ffprobe_binary, run_ffmpeg
from highlighter.io.probe import (AudioStreamInfo, MediaInfo, VideoStreamInfo, check_file, probe, probe_video,
                                  require_video)
from highlighter.io.video import BACKENDS, FrameChunk, iter_frames, read_frames, sample_times

__all__ = [
    "Audio", "AudioStreamInfo", "BACKENDS", "FrameChunk", "MediaInfo", "VideoStreamInfo", "check_file",
    "ffmpeg_binary", "ffprobe_binary", "iter_audio", "iter_frames", "load_audio", "probe", "probe_video",
    "read_frames", "require_video", "run_ffmpeg", "sample_times",
]
