"""The detect result: typed dataclasses <-> the versioned JSON of ``result.schema.json``.

The schema file is the documentation of the JSON; `DetectResult.to_dict` writes exactly
that shape (tests validate it with ``jsonschema``). `DetectResult.from_dict` (and so
``trim --from``) checks a document against the same file with `schema_problem`, a small
reader of the JSON Schema keywords that file uses, so ``jsonschema`` stays a test-only
dependency; `content_problem` then checks what the schema cannot say (time order,
end > start, a usable selection). Every message names the file.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from highlighter import __version__
from highlighter.errors import InputError, UsageError
from highlighter.outputs.segments import Segment, SelectConfig, parse_top

SCHEMA_VERSION = "1.4"  # 1.1: optional ``signal``, ``method.mode``, ``method.pretrain``; 1.2: ``cuts``,
# ``selection.cross_cuts`` / ``selection.snap``, ``selection.top`` may be a reel length ("30s"); 1.3: ``method.why``;
# 1.4: ``method.pretrain.engine``
READABLE_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")  # a minor version only adds optional fields: older files still read
SCHEMA_PATH = Path(__file__).with_name("result.schema.json")


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":  # JSON has no NaN/Infinity, though Python's json module reads them
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, {"object": dict, "array": list, "string": str, "boolean": bool,
                              "null": type(None)}[kind])


def schema_problem(value: Any, schema: dict[str, Any], where: str = "") -> str | None:
    """The first way ``value`` breaks ``schema`` (or None), for the keywords result.schema.json uses.

    Recursion follows the schema's depth, not the document's, so deep nesting cannot overflow it.
    """
    name = where or "the document"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} is {value}, not a finite number"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_type_ok(value, k) for k in kinds):
            return f"{name} must be {' or '.join(kinds)}, not {_show(value)}"
    if "const" in schema and (value != schema["const"] or type(value) is not type(schema["const"])):
        return f"{name} must be {_show(schema['const'])}, not {_show(value)}"
    if "enum" in schema and not any(value == e and type(value) is type(e) for e in schema["enum"]):
        return f"{name} must be one of {_show(schema['enum'])}, not {_show(value)}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{name} must be >= {schema['minimum']}, not {_show(value)}"
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return f"{name} must be > {schema['exclusiveMinimum']}, not {_show(value)}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{name} must be <= {schema['maximum']}, not {_show(value)}"
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        return f"{name} does not match {schema['pattern']}: {_show(value)}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                return f"{name} has no '{key}'"
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = props.get(key, extra)
            if sub is False:
                return f"{name} has an unknown field {_show(key)}"
            if isinstance(sub, dict):
                problem = schema_problem(item, sub, f"{where}.{key}" if where else key)
                if problem:
                    return problem
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for k, item in enumerate(value):
            problem = schema_problem(item, schema["items"], f"{name}[{k}]")
            if problem:
                return problem
    return None


def content_problem(d: dict[str, Any]) -> str | None:
    """What a schema-valid document can still get wrong for trim: order, end > start, selection."""
    duration = d["video"]["duration"]
    prev = -math.inf
    for k, c in enumerate(d["clips"]):
        if c["start"] <= prev or c["end"] <= c["start"]:
            return f"clips[{k}] ({c['start']}-{c['end']} s) is out of time order or has end <= start"
        prev = c["start"]
    for k, g in enumerate(d["segments"]):
        if g["end"] <= g["start"]:
            kind = "zero-length" if g["end"] == g["start"] else "reversed"
            return f"segments[{k}] is {kind} ({g['start']}-{g['end']} s)"
        if g["end"] > duration + 0.5:
            return f"segments[{k}] ends at {g['end']} s, after the end of the video it describes ({duration} s)"
    sel = d["selection"]
    try:
        parse_top(sel["top"])
    except UsageError:
        return f"selection.top is {_show(sel['top'])}, not a count like 5 or a share like \"10%\""
    if sel["top"] is None and sel["threshold"] is None:
        return "selection has neither top nor threshold"
    if sel["max_length"] is not None and sel["max_length"] < sel["min_length"]:
        return "selection.max_length is below selection.min_length"
    cuts = d.get("cuts") or []
    for k, c in enumerate(cuts):
        if c <= 0 or c >= duration + 0.5 or (k and c <= cuts[k - 1]):
            return f"cuts[{k}] ({c} s) is not inside the video ({duration} s) in increasing order"
    return None


def validate_result(d: Any, source: str = "<result>") -> None:
    """Raise one InputError naming ``source`` when ``d`` is not a usable detect result."""
    if isinstance(d, dict) and isinstance(d.get("schema_version"), str) and d["schema_version"] not in READABLE_VERSIONS:
        raise InputError(f"{source}: result schema {d['schema_version']} is not supported "
                         f"(this highlighter reads {', '.join(READABLE_VERSIONS)}); re-run highlighter detect")
    problem = schema_problem(d, load_schema()) or content_problem(d)
    if problem:
        raise InputError(f"{source}: not a highlighter detect result ({problem}); "
                         "pass the .json written by highlighter detect on this video")


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
    mode: str | None = None  # "weights" | "video" (pretrained on the video itself) | None (training-free)
    pretrain: dict[str, Any] | None = None  # video mode: seeds, epochs, audio, init, engine, seconds, why, no_audio
    why: str | None = None  # the line saying which backbones and method run and why (the CPU default), if any


@dataclass
class Signal:
    """Whether the video's clips differ enough for a ranking to mean anything (`api.clip_signal`)."""

    clear: bool
    spread: float | None  # None: fewer than two clips, nothing to compare
    threshold: float

    @property
    def message(self) -> str | None:
        """The one line a flat video gets (None when the signal is clear)."""
        if self.clear:
            return None
        return (f"no clear highlight: the clips barely differ (spread {self.spread:.3g} < {self.threshold:g}); "
                "the segments are only the best of a flat video")

    def to_dict(self) -> dict[str, Any]:
        return {"clear": bool(self.clear), "spread": None if self.spread is None else round(float(self.spread), 6),
                "threshold": float(self.threshold)}


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
    signal: Signal | None = None  # None: not measured (results read from a 1.0 file)
    cuts: list[float] | None = None  # shot cuts, seconds (`outputs.shots`); None: not detected (or a file before 1.2)

    def to_dict(self) -> dict[str, Any]:
        m: dict[str, Any] = {"name": self.method.name,
                             "weights": None if self.method.weights is None else {
                                 "id": self.method.weights.id, "sha256": self.method.weights.sha256,
                                 "path": self.method.weights.path},
                             "fallback": self.method.fallback, "mode": self.method.mode,
                             "pretrain": None if self.method.pretrain is None else dict(self.method.pretrain)}
        if self.method.requested is not None:
            m["requested"] = self.method.requested
        if self.method.why is not None:
            m["why"] = self.method.why
        v = self.video
        signal = {} if self.signal is None else {"signal": self.signal.to_dict()}
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
            **signal,
            "cuts": None if self.cuts is None else [round(float(c), 6) for c in self.cuts],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<result>") -> "DetectResult":
        """Read a document after `validate_result` (every problem names ``source``)."""
        validate_result(d, source)
        try:
            v, m, clips = d["video"], d["method"], d["clips"]
            w, sig = m.get("weights"), d.get("signal")
            return cls(
                video=VideoInfo(**{k: v.get(k) for k in VideoInfo.__dataclass_fields__}),
                method=MethodInfo(name=m["name"], weights=None if w is None else WeightsInfo(**w),
                                  requested=m.get("requested"), fallback=m.get("fallback"), mode=m.get("mode"),
                                  pretrain=m.get("pretrain"), why=m.get("why")),
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
                signal=None if sig is None else Signal(clear=sig["clear"], spread=sig["spread"],
                                                       threshold=sig["threshold"]),
                cuts=None if d.get("cuts") is None else [float(c) for c in d["cuts"]],
            )
        except (KeyError, TypeError, ValueError, UsageError) as exc:
            raise InputError(f"{source}: not a highlighter detect result ({type(exc).__name__}: {exc}); "
                             "pass the .json written by highlighter detect") from None


def load_result(path: str | Path) -> DetectResult:
    """Read a detect JSON (``trim --from``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: result file not found; run highlighter detect first")
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror}); check its permissions") from None
    except RecursionError:
        raise InputError(f"{path}: not valid JSON (nested too deeply); "
                         "pass the .json written by highlighter detect") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); pass the .json written by highlighter detect") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a highlighter detect result; pass the .json written by highlighter detect")
    return DetectResult.from_dict(data, source=str(path))
