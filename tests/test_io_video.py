"""Frame decoding: timestamps, counts, colours, size, rotation, VFR — with both backends."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import media
from highlighter.errors import InputError, UsageError
from highlighter.io import iter_frames, probe, read_frames, sample_times
from highlighter.io.video import output_size, select_indices

BACKENDS = ["decord", "pyav"]
RED, BLUE = np.array(media.COLORS["red"]), np.array(media.COLORS["blue"])


@pytest.fixture(scope="module")
def clip(media_dir):
    """4 s, 25 fps, red over [0, 2) then blue."""
    return media.make_video(media_dir / "rb.mp4", 4.0, colors=[(0, "red"), (2, "blue")])


def _close(rgb, ref, tol=20):
    return np.abs(np.asarray(rgb, float) - ref).max() < tol


def test_sampling_rule_is_latest_pts_at_or_before_target():
    src = np.array([0.0, 0.1, 0.35, 0.5])
    t = sample_times(0.0, 0.6, 10)
    assert np.allclose(t, np.arange(6) / 10)
    assert select_indices(src, t).tolist() == [0, 1, 1, 1, 2, 3]  # 0.3 holds the 0.1 frame
    assert select_indices(np.array([0.05, 0.1]), np.array([0.0])).tolist() == [0]  # before the first frame
    assert output_size(320, 240, 64) == (85, 64) and output_size(97, 161, 50) == (50, 83)
    assert sample_times(0.0, 0.1, 5).tolist() == [0.0]  # shorter than one sample period: still one frame


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fps", [5, 25])
def test_timestamps_counts_colours(clip, backend, fps):
    out = read_frames(clip, fps, short_side=64, backend=backend)
    n = 4 * fps
    assert out.frames.shape == (n, 64, 85, 3) and out.frames.dtype == np.uint8
    assert np.allclose(out.times, np.arange(n) / fps)
    assert np.allclose(out.pts, out.times, atol=1e-3)  # 25 fps source: every target hits a frame exactly
    rgb = media.mean_rgb(out.frames)
    for t, c in zip(out.times, rgb):
        assert _close(c, RED if t < 2 else BLUE), (t, c)
    assert out.backend == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunks_bounded_and_consistent(clip, backend):
    chunks = list(iter_frames(clip, 25, short_side=32, chunk_size=7, backend=backend))
    assert [len(c) for c in chunks] == [7] * 14 + [2]
    assert [c.first_index for c in chunks] == list(range(0, 100, 7))
    whole = read_frames(clip, 25, short_side=32, chunk_size=1000, backend=backend)
    assert np.array_equal(np.concatenate([c.frames for c in chunks]), whole.frames)
    assert np.array_equal(np.concatenate([c.pts for c in chunks]), whole.pts)


@pytest.mark.parametrize("backend", BACKENDS)
def test_start_end_and_low_fps_hold(clip, backend):
    out = read_frames(clip, 2, start=1.0, end=3.0, backend=backend, short_side=32)
    assert np.allclose(out.times, [1.0, 1.5, 2.0, 2.5])
    assert np.allclose(out.pts, [1.0, 1.48, 2.0, 2.48], atol=1e-3)  # 1.5 is between frames 1.48 and 1.52
    hi = read_frames(clip, 50, start=3.5, backend=backend, short_side=32)  # 50 fps from 25: each frame twice
    assert len(hi) == 25
    src = np.arange(100) * 0.04
    assert np.allclose(hi.pts, src[np.searchsorted(src, hi.times + 1e-6, side="right") - 1], atol=1e-3)
    assert len(np.unique(hi.pts.round(3))) == 13  # 3.48, 3.52, ..., 3.96 — mostly held twice


def test_backends_agree(clip):
    a = read_frames(clip, 5, short_side=48, backend="decord")
    b = read_frames(clip, 5, short_side=48, backend="pyav")
    assert a.frames.shape == b.frames.shape
    assert np.allclose(a.pts, b.pts, atol=1e-4)
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate_sampled_by_pts(media_dir, backend):
    path = media_dir / "vfr.mp4"
    if not path.exists():
        media.make_video(path, 4.0, fps=25, vfr=True, colors=[(0, "red"), (3, "blue")])
    info = probe(path)
    assert info.video.vfr and info.video.num_frames == len(media.vfr_pts(4.0, 25))
    out = read_frames(path, 10, short_side=32, backend=backend)
    src = media.vfr_pts(4.0, 25)
    expect = src[np.searchsorted(src, out.times + 1e-6, side="right") - 1]
    assert len(out) == 40
    assert np.allclose(out.pts, expect, atol=1e-3)
    assert out.pts[-1] < 4.0 and (np.diff(out.pts[20:]) > 0.1).any()  # held frames in the 8.3 fps half
    rgb = media.mean_rgb(out.frames)
    assert all(_close(c, RED if p < 3 else BLUE) for p, c in zip(out.pts, rgb))


def _ffmpeg_first_frame(path, w, h):
    """ffmpeg's own (auto-rotated) first frame: the reference for "upright"."""
    raw = subprocess.run([media.ffmpeg(), "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3)


@pytest.mark.parametrize("rotate", [90, 180, 270])
@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_matches_ffmpeg_autorotate(media_dir, rotate, backend):
    path = media_dir / f"rot{rotate}.mp4"
    if not path.exists():
        media.make_video(path, 1.0, size=(96, 64), colors=[(0, "blue")], rotate=rotate, marker=True, audio=False)
    v = probe(path).video
    assert v.rotation in (90, 180, 270) and (v.width, v.height) == (96, 64)
    dw, dh = (64, 96) if v.rotation in (90, 270) else (96, 64)
    assert (v.display_width, v.display_height) == (dw, dh)
    ref = _ffmpeg_first_frame(path, dw, dh)
    out = read_frames(path, 5, backend=backend)
    assert out.frames.shape[1:] == (dh, dw, 3)
    assert np.abs(out.frames[0].astype(int) - ref.astype(int)).mean() < 6
    small = read_frames(path, 5, short_side=32, backend=backend)  # short side after rotation too
    assert min(small.frames.shape[1:3]) == 32 and (small.frames.shape[1] > small.frames.shape[2]) == (dh > dw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_size_and_shorter_than_one_clip(media_dir, backend):
    path = media_dir / "odd.mp4"
    if not path.exists():
        media.make_video(path, 0.3, size=(161, 97), colors=[(0, "red")])
    full = read_frames(path, 5, backend=backend)
    assert full.frames.shape == (2, 97, 161, 3)  # targets 0.0 and 0.2 in a 0.3 s video
    assert np.allclose(full.pts, [0.0, 0.2], atol=1e-3)
    small = read_frames(path, 25, short_side=50, backend=backend)
    n = probe(path).video.num_frames
    assert small.frames.shape[1:] == (50, 83, 3) and len(small) == n  # one target per 25 fps source frame


@pytest.mark.parametrize("backend", BACKENDS)
def test_mpegts_offset_start_is_rebased(media_dir, backend):
    """MPEG-TS starts at ~1.4 s; pts are from the container start, and decord's are shifted to match."""
    src = media.make_video(media_dir / "ts_src.mp4", 2.0, audio=False, colors=[(0, "red"), (1, "blue")]) \
        if not (media_dir / "ts_src.mp4").exists() else media_dir / "ts_src.mp4"
    path = media_dir / "offset.ts"
    if not path.exists():
        subprocess.run([media.ffmpeg(), "-v", "error", "-y", "-i", str(src), "-c", "copy", str(path)], check=True)
    info = probe(path)
    assert info.start_time > 0.5 and abs(info.video.start) < 0.05
    out = read_frames(path, 5, short_side=32, backend=backend)
    assert len(out) == 10 and np.allclose(out.pts, out.times, atol=0.02)
    rgb = media.mean_rgb(out.frames)
    assert _close(rgb[4], RED) and _close(rgb[5], BLUE)


def test_vp8_webm_both_backends(media_dir):
    path = media.make_video(media_dir / "vp8.webm", 2.0, codec="libvpx", colors=[(0, "red"), (1, "blue")])
    v = probe(path).video
    n = len(sample_times(0.0, v.start + v.duration, 5))  # webm video starts at 3 ms: 2.0 s can be a target
    assert n in (10, 11)
    for backend in BACKENDS:
        out = read_frames(path, 5, short_side=32, backend=backend)
        assert len(out) == n, backend
        rgb = media.mean_rgb(out.frames)
        assert _close(rgb[3], RED, 30) and _close(rgb[7], BLUE, 30), backend


def test_auto_falls_back_to_pyav_when_decord_fails(media_dir):
    """decord cannot measure a GIF's duration; PyAV can. ``auto`` must still deliver frames."""
    path = media_dir / "anim.gif"
    subprocess.run([media.ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x48:r=10:d=1",
                    str(path)], check=True)
    with pytest.raises(InputError, match="decord cannot decode"):
        read_frames(path, 5, backend="decord")
    out = read_frames(path, 5, backend="auto")
    assert out.backend == "pyav" and len(out) == 5 and _close(media.mean_rgb(out.frames)[0], RED, 30)


def test_bad_arguments(clip):
    with pytest.raises(UsageError):
        read_frames(clip, 0)
    with pytest.raises(UsageError):
        read_frames(clip, 5, backend="opencv")
    with pytest.raises(UsageError, match="past the end"):
        read_frames(clip, 5, start=10.0)
    with pytest.raises(InputError, match="no such file"):
        read_frames(clip.with_name("missing.mp4"), 5)


@pytest.mark.shared
@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_videos(shared_videos, backend):
    fire = shared_videos / "fire2.mp4"  # phone video: VFR, rotated 180°, mono audio
    info = probe(fire)
    assert info.video.vfr and info.video.rotation == 180
    out = read_frames(fire, 5, short_side=64, backend=backend)
    assert out.frames.shape == (12, 64, 114, 3)
    assert np.all(np.diff(out.pts) >= 0) and np.all(out.pts <= out.times + 1e-6)
    bbb = read_frames(shared_videos / "big_buck_bunny_432_433.webm", 5, short_side=64, backend=backend)
    assert len(bbb) == 5 and bbb.frames.shape[1:] == (64, 114, 3)
    ex = read_frames(shared_videos / "example.mp4", 1, short_side=32, backend=backend, end=10.0)
    assert len(ex) == 10 and np.allclose(ex.pts, np.arange(10), atol=1e-3)


@pytest.mark.shared
def test_shared_rotated_backends_agree(shared_videos):
    fire = shared_videos / "fire2.mp4"
    a = read_frames(fire, 5, short_side=64, backend="decord")
    b = read_frames(fire, 5, short_side=64, backend="pyav")
    assert np.allclose(a.pts, b.pts, atol=1e-4)
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 4


# --------------------------------------------------------------------------- one pass, several consumers
def test_on_frame_sees_every_decoded_frame_of_the_same_pass(clip):
    """The hook gets each decoded frame once, in time order, with its seconds; it forces PyAV
    (decord hides the frames) and does not change what is sampled."""
    seen: list[float] = []
    chunks = list(iter_frames(clip, fps=5, short_side=32, on_frame=lambda f, t: seen.append(t)))
    plain = read_frames(clip, fps=5, short_side=32, backend="pyav")
    assert {c.backend for c in chunks} == {"pyav"}
    # every frame up to the last target (3.8 s; decoding stops there), once each, in order
    assert seen == sorted(set(seen)) and seen[0] == pytest.approx(0.0, abs=1e-3) and 3.8 <= seen[-1] < 3.9
    assert len(seen) == round(seen[-1] * 25) + 1
    assert np.array_equal(np.concatenate([c.frames for c in chunks]), plain.frames)
    with pytest.raises(UsageError, match="PyAV"):
        next(iter_frames(clip, fps=5, backend="decord", on_frame=lambda f, t: None))


def test_skip_nonref_keeps_the_sample_grid(media_dir):
    """x264's B-frames that nothing references are not decoded: fewer frames reach the hook, every
    target still gets a frame, held from at most a few source frames earlier."""
    src = media_dir / "nonref.mp4"  # x264 veryfast: B-frames (media.make_video's ultrafast has none)
    if not src.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=3",
                        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(src)], check=True)
    full: list[float] = []
    fast: list[float] = []
    a = read_frames(src, fps=5, backend="pyav", on_frame=lambda f, t: full.append(t))
    b = read_frames(src, fps=5, backend="pyav", on_frame=lambda f, t: fast.append(t), skip_nonref=True)
    assert len(fast) < 0.9 * len(full) and len(full) == round(full[-1] * 25) + 1
    assert np.array_equal(a.times, b.times) and len(b) == 15
    assert np.all(b.pts <= b.times + 1e-3) and np.all(a.pts - b.pts <= 3 / 25 + 1e-6)
    assert np.abs(a.frames.astype(int) - b.frames).mean() < np.abs(a.frames[1:].astype(int) - a.frames[:-1]).mean()


def _x264_clip(dest, x264_params: str, source: str = "testsrc2=size=160x96:rate=25:duration=6"):
    if not dest.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset",
                        "veryfast", "-x264-params", x264_params, "-pix_fmt", "yuv420p", str(dest)], check=True)
    return dest


def _luma(frame) -> np.ndarray:
    return frame.to_ndarray(format="gray").copy()


@pytest.mark.parametrize("name, params, skips", [
    ("ref1", "ref=1:bframes=3:b-pyramid=normal", True),  # x264 veryfast / OBS: no P frame predicts from a B frame
    ("ref3", "ref=3:bframes=3:b-pyramid=normal", False),  # x264 medium: P frames predict from reference B frames
])
def test_b_frames_are_skipped_only_when_no_p_frame_needs_them(media_dir, name, params, skips):
    """`BFrameCheck`: with one reference frame, B frames stop being decoded after the check and every I/P frame
    is still bit-identical to a full decode; with three, reference B frames keep being decoded (skipping them
    would corrupt the P frames) and again every frame decoded equals the full decode's."""
    import av

    src = _x264_clip(media_dir / f"bpyr-{name}.mp4", params)
    with av.open(str(src)) as c:
        full = {f.pts: (f.pict_type, _luma(f)) for f in c.decode(c.streams.video[0])}
    seen = []
    b = read_frames(src, fps=5, backend="pyav", skip_nonref=True,
                    on_frame=lambda f, t: seen.append((t, f.pts, f.pict_type, _luma(f))))
    assert len(b) == 30 and np.all(b.pts <= b.times + 1e-3)
    assert all(np.array_equal(luma, full[pts][1]) for _t, pts, _ty, luma in seen)  # nothing decoded wrongly
    late_b = [t for t, _pts, ty, _l in seen if ty == av.video.frame.PictureType.B and t > 4.5]
    n_b = sum(ty == av.video.frame.PictureType.B for ty, _l in full.values())
    assert n_b > 30  # the stream has B frames to skip
    assert (late_b == []) == skips, late_b
    if skips:  # only the B frames before the verdict were decoded, and a target holds at most 3 frames back
        assert len(seen) < len(full) - n_b + 20 and np.all(b.times - b.pts <= 3 / 25 + 1e-6)


def test_a_join_of_two_encodes_is_checked_again_where_the_second_starts(media_dir, tmp_path):
    """A veryfast part (B frames skippable) joined by stream copy to a medium one (P frames predict from B
    frames): the check's verdict on the first part must not carry over. Before `EncodeWatch`, the medium
    part's P frames decoded 7.8 grey levels wrong on average; now every frame decoded equals a full decode's."""
    import av

    a = _x264_clip(media_dir / "join-a.mp4", "ref=1:bframes=3:b-pyramid=normal:keyint=50")
    b = _x264_clip(media_dir / "join-b.mp4", "ref=3:bframes=3:b-pyramid=normal:keyint=50",
                   source="testsrc2=size=160x96:rate=25:duration=6,hue=h=t*40")
    listing = tmp_path / "list.txt"
    listing.write_text(f"file '{a}'\nfile '{b}'\n")
    src = tmp_path / "join.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    str(src)], check=True)
    with av.open(str(src)) as c:
        full = {f.pts: _luma(f) for f in c.decode(c.streams.video[0])}
    seen = []
    read_frames(src, fps=5, backend="pyav", skip_nonref=True, on_frame=lambda f, t: seen.append((t, f.pts, _luma(f))))
    assert all(np.array_equal(luma, full[pts]) for _t, pts, luma in seen)
    assert any(t > 6.0 for t, _p, _l in seen) and len(seen) < len(full)  # the first part's B frames were skipped


def test_encode_watch_sees_new_parameter_sets_and_x264_settings():
    from highlighter.io.video import EncodeWatch

    class Packet:
        def __init__(self, data: bytes, key: bool = True):
            self.data, self.is_keyframe = data, key

        def __bytes__(self) -> bytes:
            return self.data

    def nal(kind: int, body: bytes) -> bytes:  # 4-byte length prefix, as in MP4
        return (len(body) + 1).to_bytes(4, "big") + bytes([kind]) + body

    sps1, sps2 = b"\x64\x00\x1f\xac", b"\x64\x00\x1f\xad"
    extradata = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1]) + (len(sps1) + 1).to_bytes(2, "big") + b"\x67" + sps1
    w = EncodeWatch(extradata)
    assert not w.new_part(Packet(nal(0x06, b"x264 - core 164") + nal(0x65, b"idr")))  # the first part
    assert not w.new_part(Packet(nal(0x67, sps1) + nal(0x65, b"idr")))  # the same SPS again
    assert not w.new_part(Packet(nal(0x41, b"x264 - core"), key=False))  # only keyframes count
    assert w.new_part(Packet(nal(0x67, sps2) + nal(0x65, b"idr")))  # other parameter sets
    assert not w.new_part(Packet(nal(0x67, sps2) + nal(0x65, b"idr")))
    assert w.new_part(Packet(nal(0x06, b"x264 - core 164") + nal(0x65, b"idr")))  # another x264 run
    annexb = EncodeWatch(None)
    assert not annexb.new_part(Packet(b"\x00\x00\x00\x01\x67" + sps1 + b"\x00\x00\x01\x65idr"))
    assert annexb.new_part(Packet(b"\x00\x00\x00\x01\x67" + sps2 + b"\x00\x00\x01\x65idr"))


def test_b_frame_check_needs_evidence(media_dir):
    """A still picture decodes the same whatever a P frame references, so it proves nothing: B frames stay."""
    import av

    from highlighter.io.video import BFrameCheck

    src = _x264_clip(media_dir / "bpyr-still.mp4", "ref=1:bframes=3:b-pyramid=normal",
                     source="color=c=gray:size=160x96:rate=25:duration=6")
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        s.codec_context.skip_frame = "NONREF"
        check = BFrameCheck(s)
        said = []
        for packet in c.demux(s):
            check.feed(packet)
            said += [check.see(f) for f in packet.decode() if check.verdict is None]
    assert check.verdict is False and not any(said) and check.evidence == 0
