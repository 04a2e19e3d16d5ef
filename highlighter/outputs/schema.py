"""The detect result: typed dataclasses <-> the versioned JSON of ``result.schema.json``.

The schema file is the documentation of the JSON; `DetectResult.to_dict` writes exactly
that shape (tests validate it with ``jsonschema``). `load_result` reads it back for
``trim --from`` with a hand-written check of what trim needs, so ``jsonschema`` stays a
test-only dependency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from highlighter import __version__
from highlighter.errors import InputError
from highlighter.outputs.segments import Segment, SelectConfig

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("result.schema.json")


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@dataclass
class VideoInfo:
    path: str
    name: str
    duration: float
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    has_audio: bool = False
    size_bytes: int | None = None


@dataclass
class WeightsInfo:
    id: str
    sha256: str | None = None
    path: str | None = None


@dataclass
class MethodInfo:
    name: str
    weights: WeightsInfo | None = None
    requested: str | None = None
    fallback: str | None = None  # why the requested method/backbone was replaced


@dataclass
class DetectResult:
    """Everything `detect` found in one video; arrays are per clip on the grid."""

    video: VideoInfo
    method: MethodInfo
    visual_backbone: str | None
    audio_backbone: str | None
    clip_seconds: float
    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray
    segments: list[Segment]
    selection: SelectConfig
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        m: dict[str, Any] = {"name": self.method.name,
                             "weights": None if self.method.weights is None else {
                                 "id": self.method.weights.id, "sha256": self.method.weights.sha256,
                                 "path": self.method.weights.path},
                             "fallback": self.method.fallback}
        if self.method.requested is not None:
            m["requested"] = self.method.requested
        v = self.video
        return {
            "schema_version": SCHEMA_VERSION,
            "generator": {"name": "highlighter", "version": __version__},
            "created": self.created,
            "video": {"path": v.path, "name": v.name, "duration": float(v.duration),
                      "width": v.width, "height": v.height, "fps": None if v.fps is None else float(v.fps),
                      "has_audio": bool(v.has_audio), "size_bytes": v.size_bytes},
            "method": m,
            "backbones": {"visual": self.visual_backbone, "audio": self.audio_backbone},
            "clip_seconds": float(self.clip_seconds),
            "selection": self.selection.to_dict(),
            "clips": [{"start": round(float(a), 6), "end": round(float(b), 6), "score": float(x)}
                      for a, b, x in zip(self.starts, self.ends, self.scores)],
            "segments": [g.to_dict() for g in self.segments],
            "timings": {k: round(float(t), 4) for k, t in self.timings.items()},
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<result>") -> "DetectResult":
        try:
            major = str(d["schema_version"]).split(".")[0]
            if major != SCHEMA_VERSION.split(".")[0]:
                raise InputError(f"{source}: result schema {d['schema_version']} is not supported "
                                 f"(this highlighter reads {SCHEMA_VERSION}); re-run highlighter detect")
            v, m, clips = d["video"], d["method"], d["clips"]
            w = m.get("weights")
            return cls(
                video=VideoInfo(**{k: v.get(k) for k in VideoInfo.__dataclass_fields__}),
                method=MethodInfo(name=m["name"], weights=None if w is None else WeightsInfo(**w),
                                  requested=m.get("requested"), fallback=m.get("fallback")),
                visual_backbone=d["backbones"]["visual"], audio_backbone=d["backbones"]["audio"],
                clip_seconds=float(d["clip_seconds"]),
                starts=np.array([c["start"] for c in clips], dtype=np.float64),
                ends=np.array([c["end"] for c in clips], dtype=np.float64),
                scores=np.array([c["score"] for c in clips], dtype=np.float64),
                segments=[Segment(start=float(g["start"]), end=float(g["end"]), score=float(g["score"]),
                                  rank=int(g["rank"])) for g in d["segments"]],
                selection=SelectConfig(**d["selection"]),
                timings=dict(d.get("timings", {})), notes=list(d.get("notes", [])),
                created=d.get("created", ""),
            )
        except InputError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: not a highlighter detect result ({type(exc).__name__}: {exc}); "
                             "pass the .json written by highlighter detect") from None


def load_result(path: str | Path) -> DetectResult:
    """Read a detect JSON (``trim --from``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: result file not found; run highlighter detect first")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); pass the .json written by highlighter detect") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a highlighter detect result; pass the .json written by highlighter detect")
    return DetectResult.from_dict(data, source=str(path))
