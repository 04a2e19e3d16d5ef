"""The offline pair (efficientnet-lite0-motion + logmel) on real decodes of lavfi media and real footage.

Motion media: a static aperiodic texture (so that phase correlation has something to lock on,
as any real background has), optionally panned (a crop moving over a wider canvas) and with a
white box that moves in the scene only during 2-4 s.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import media
from highlighter.features import base
from highlighter.features.extract import ExtractConfig, extract_features
from highlighter.io import iter_frames

SIZE = (128, 96)


def make_scene(path, duration: float = 6.0, pan: float = 0.0, box: bool = False, fps: int = 10):
    """Textured scene, camera panning ``pan`` px/s; a 20x20 box moving 40 px/s in the scene
    during 2-4 s and resting in the scene (so moving with the background in the frame) otherwise."""
    w, h = SIZE
    canvas = w + int(pan * duration) + 2
    # rule 30 from a seeded random row: an aperiodic texture (sines repeat, and a repeating
    # pattern matches itself at many shifts); its first frame held, blurred like a lens would
    graph = (f"cellauto=s={canvas}x{h}:rule=30:random_fill_ratio=0.5:random_seed=1:full=1:scroll=0:rate={fps},"
             f"loop=loop=-1:size=1,format=yuv444p,gblur=sigma=1.5,crop=w={w}:h={h}:x='{pan}*t':y=0")
    if box:
        graph += (f"[bg];color=c=white:s=20x20:r={fps}:d={duration}[b];"
                  f"[bg][b]overlay=x='{10 + 2 * pan}+40*min(max(t-2\\,0)\\,2)-{pan}*t':y=38")
    subprocess.run([media.ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", graph, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv444p",
                    "-t", str(duration), str(path)], check=True, capture_output=True)
    return path


def motion_per_clip(path) -> np.ndarray:
    """(clips, 8) motion fields of 2-s clips, from the decode the backbone itself asks for."""
    from highlighter.features.visual.motion import EfficientNetLite0MotionBackbone as M, clip_motion

    frames = np.concatenate([c.frames for c in iter_frames(path, fps=M.fps, short_side=M.short_side)])
    per = int(2 * M.fps)
    return np.stack([clip_motion(frames[i:i + per]) for i in range(0, len(frames) - per + 1, per)])


def field(name: str) -> int:
    from highlighter.features.visual.motion import MOTION_FIELDS

    return MOTION_FIELDS.index(name)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenes")
    return {k: motion_per_clip(make_scene(d / f"{k}.mp4", **kw)) for k, kw in {
        "static": {}, "box": {"box": True}, "pan": {"pan": 20.0}, "pan+box": {"pan": 20.0, "box": True}}.items()}


def test_offline_pair_is_registered_and_needs_no_download():
    assert (base.OFFLINE_VISUAL, base.OFFLINE_AUDIO) == ("efficientnet-lite0-motion", "logmel")
    v, a = base.backbone_class(base.OFFLINE_VISUAL).spec, base.backbone_class(base.OFFLINE_AUDIO).spec
    assert (v.modality, v.dim, v.weights) == ("visual", 1288, None)
    assert (a.modality, a.dim, a.weights) == ("audio", 132, None)


def test_moving_box_raises_motion_only_in_its_clip(scenes):
    static, box = scenes["static"], scenes["box"]
    assert np.abs(static).max() < 1.0, static  # nothing moves: ~0 (compression noise)
    for name, floor in (("residual_mean", 2.0), ("local_mean", 5.0), ("moving_mean", 2.0)):
        col = box[:, field(name)]
        assert col[1] > floor and col[1] > 5 * max(col[0], col[2]), (name, col)
    assert box[:, field("camera_max")].max() < 1.0  # the box is not taken for the camera


def test_camera_pan_alone_does_not_dominate(scenes):
    pan, both = scenes["pan"], scenes["pan+box"]
    cam = pan[:, field("camera_mean")]
    assert (cam > 10).all(), cam  # 20 px/s of a 96-px frame: ~10 % of the short side per 0.5 s
    assert pan[:, field("residual_mean")].max() < 0.5 * scenes["box"][1, field("residual_mean")]
    for name in ("residual_mean", "local_mean", "moving_mean"):
        col = both[:, field(name)]
        assert col.argmax() == 1 and col[1] > 2 * max(col[0], col[2]), (name, col)


def test_backbone_appends_motion_to_the_unchanged_efficientnet_vector(tmp_path):
    import torch

    from highlighter.features.visual.efficientnet import EfficientNetLite0Backbone

    torch.set_num_threads(1)
    v = make_scene(tmp_path / "box.mp4", duration=4.0, box=True)
    bb = base.create_backbone("efficientnet-lite0-motion", "cpu", pretrained=False)
    frames = np.concatenate([c.frames for c in iter_frames(v, fps=bb.fps, short_side=bb.short_side)])
    clips = [frames[:4], frames[4:8], frames[7:8]]  # static, box moving, one frame
    x = bb.embed_clips(clips)
    assert x.shape == (3, 1288) and x.dtype == np.float32 and np.isfinite(x).all()
    np.testing.assert_allclose(x[:, :1280], EfficientNetLite0Backbone.embed_clips(bb, clips), rtol=1e-5)
    assert x[0, 1280:].max() < 1.0 < x[1, 1280] and not x[2, 1280:].any()  # box moves in clip 1; 1 frame: 0


def test_logmel_beep_raises_loudness_in_its_clip(tmp_path):
    from highlighter.features.audio.logmel import FIELDS

    v = media.make_video(tmp_path / "beep.mp4", 6.0, size=(64, 48), colors=[(0, "gray")], beep_at=[2.5])
    ff = extract_features(v, ExtractConfig(visual=None, audio="logmel", device="cpu"))
    a = ff.audio
    assert a.shape == (3, 132) and a.dtype == np.float32 and np.isfinite(a).all()
    rms, peak = a[:, FIELDS.index("rms_dbfs")], a[:, FIELDS.index("peak_dbfs")]
    assert rms[1] > -25 and rms[1] > max(rms[0], rms[2]) + 40, rms  # 0.25 s of a 0.5 sine vs silence
    assert peak[1] > -10 and peak[1] >= rms[1]
    band = a[1, :64].argmax()  # the 1-kHz beep lights the mel band that holds 1 kHz
    from highlighter.features.audio.mel import YAMNET_MELS

    edges = 700 * np.expm1(np.linspace(np.log1p(125 / 700), np.log1p(7500 / 700), YAMNET_MELS + 2))
    assert edges[band] < 1000 < edges[band + 2], (band, edges[band:band + 3])
    assert a[1, FIELDS.index("flux_max")] > a[0, FIELDS.index("flux_max")] + 1  # the onset


def test_weightlifting_clip_motion_ranks_the_lift(shared_videos):
    """v_GGSY1Qvo990: clean 6-8 s, stand-up 8-10, jerk 12-14, overhead 14-16, bar dropped 16-18;
    bent over the bar 0-4 (what the efficientnet-lite0 norm ranked first)."""
    import torch

    torch.set_num_threads(1)
    v = shared_videos / "v_GGSY1Qvo990.mp4"
    if not v.is_file():
        pytest.skip(f"{v} not found")
    ff = extract_features(v, ExtractConfig(visual=base.OFFLINE_VISUAL, audio=base.OFFLINE_AUDIO, device="cpu"))
    starts = ff.starts.round().astype(int)
    lift, drop = {6, 8, 12, 14}, 16

    def top3(score: np.ndarray) -> list[int]:
        return [int(starts[i]) for i in np.argsort(-score)[:3]]

    for name in ("residual_mean", "moving_mean"):
        top = top3(ff.visual[:, 1280 + field(name)])
        assert top[0] in lift and set(top) <= lift | {drop}, (name, top)
    top = top3(np.linalg.norm(ff.visual, axis=1))  # a training-free score on the whole vector
    assert len(set(top) & lift) >= 2 and set(top) <= lift | {drop}, top
    assert ff.audio.shape == (len(starts), 132) and not ff.meta["no_audio"]
