"""YAMNet (Google, AudioSet 521 classes, MobileNet-v1) as an int8 TFLite model with log-mel input.

Checkpoint: ``yamnet_spectra_in.tflite`` from the Coral Dev Board Micro repository
(google-coral/coralmicro, ``models/``; Apache-2.0): YAMNet without its feature layer,
input ``feature_patch_in:0`` = one (1, 96, 64) log-mel patch, output 521 AudioSet scores.
The 1024-d embedding is tensor 90, ``tower0/network/layer28/reduce_mean`` (YAMNet's
global average pool), int8; we read it with ``experimental_preserve_all_tensors=True``
and dequantise with its scale / zero point.

Front end: YAMNet's own features (our numpy port in mel.py): 16 kHz, 25 ms periodic
Hann, 10 ms hop, |STFT| (FFT 512), 64 HTK mel bins 125-7500 Hz, log(mel + 0.001),
0.96-s patches every 0.48 s, waveform zero-padded as YAMNet's ``pad_waveform`` does.
The model's input quantisation (scale 0.0478, zero point 17 → [-6.93, 5.26]) matches
that range (log(0.001) = -6.91), which confirms the contract. (The coralmicro C++ demo
feeds rescaled TFLM-frontend features instead; we follow the original YAMNet.)

Choices: the clip embedding is the mean of the embeddings of the clip's patches (a 2-s
clip gives 4 patches); we run the reference CPU kernels (no XNNPACK delegate):
reading an intermediate tensor is only documented for them, and they give the same
result on every CPU (XNNPACK differs by up to 5 int8 steps, ~0.1; 0.5 vs 3.9 ms/patch).

Needs the optional dependency ``ai-edge-litert`` (``pip install highlighter[yamnet]``);
``tflite-runtime`` works too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from highlighter.errors import HighlighterError, InputError, UsageError
from highlighter.features.audio.mel import YAMNET_MELS, YAMNET_PATCH, YAMNET_SR, yamnet_patches
from highlighter.features.base import Backbone, BackboneSpec, register_backbone
from highlighter.features.weights import WeightSpec, register_weights

EMBEDDING_TENSOR = "tower0/network/layer28/reduce_mean"
EMBEDDING_INDEX = 90
N_CLASSES = 521

WEIGHTS = register_weights(WeightSpec(
    name="yamnet",
    url="https://raw.githubusercontent.com/google-coral/coralmicro/main/models/yamnet_spectra_in.tflite",
    sha256="0a266465c46718f3fcc4137366be82882a8c93bfcc4f0278581a11d11dddcdf9",  # measured on the file
    size=4047424,
    licence="Apache-2.0",
    filename="yamnet_spectra_in.tflite",
    description="YAMNet int8 TFLite, input one 96x64 log-mel patch, 521 AudioSet scores",
    source="https://github.com/google-coral/coralmicro/tree/main/models",
))


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter, OpResolverType  # type: ignore[no-redef]
        except ImportError:
            raise HighlighterError("the yamnet backbone needs a TFLite runtime: pip install 'highlighter[yamnet]' "
                                   "(ai-edge-litert)") from None
    return Interpreter, OpResolverType


class YamnetTFLite:
    """One interpreter; ``run(patches) -> (embeddings (P, 1024), scores (P, 521))``."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise InputError(f"YAMNet model {path} does not exist (import it: highlighter weights import yamnet FILE)")
        Interpreter, OpResolverType = _interpreter_class()
        try:
            self.it = Interpreter(model_path=str(path), num_threads=1, experimental_preserve_all_tensors=True,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            self.it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"{path} is not a loadable TFLite model ({exc}); re-download yamnet_spectra_in.tflite") from exc
        inp = self.it.get_input_details()
        outs = self.it.get_output_details()
        details = {d["index"]: d for d in self.it.get_tensor_details()}
        emb = details.get(EMBEDDING_INDEX)
        if (len(inp) != 1 or tuple(inp[0]["shape"]) != (1, YAMNET_PATCH, YAMNET_MELS) or len(outs) != 1
                or tuple(outs[0]["shape"]) != (1, N_CLASSES) or emb is None or emb["name"] != EMBEDDING_TENSOR
                or int(np.prod(emb["shape"])) != 1024):
            raise InputError(f"{path} is not yamnet_spectra_in.tflite (input {inp[0]['shape'] if inp else None}, "
                             f"tensor {EMBEDDING_INDEX} = {emb['name'] if emb else None})")
        self.input_index = inp[0]["index"]
        self.output_index = outs[0]["index"]
        self.emb_scale, self.emb_zero = emb["quantization"]

    def run(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(patches)
        embs = np.zeros((n, 1024), dtype=np.float32)
        scores = np.zeros((n, N_CLASSES), dtype=np.float32)
        for i, p in enumerate(patches):
            self.it.set_tensor(self.input_index, np.ascontiguousarray(p[None], dtype=np.float32))
            self.it.invoke()
            q = self.it.get_tensor(EMBEDDING_INDEX).reshape(-1).astype(np.float32)
            embs[i] = (q - self.emb_zero) * self.emb_scale if self.emb_scale else q
            scores[i] = self.it.get_tensor(self.output_index).reshape(-1)
        return embs, scores


@register_backbone
class Yamnet(Backbone):
    spec = BackboneSpec(
        name="yamnet",
        modality="audio",
        dim=1024,
        weights=WEIGHTS.name,
        description="YAMNet (AudioSet) int8 TFLite, mean patch embedding, 1024-d",
        contract=(
            "mono float32 at 16 kHz; YAMNet features: |STFT| 25 ms periodic Hann, 10 ms hop, FFT 512; "
            "64 HTK mel bins 125-7500 Hz (tf.signal.linear_to_mel_weight_matrix); log(mel + 0.001); "
            "0.96-s patches, 0.48-s hop, YAMNet zero padding; embedding = dequantised layer28/reduce_mean "
            "(1024) averaged over the clip's patches."
        ),
    )
    sample_rate = YAMNET_SR
    uses_torch = False  # TFLite: the extractor then never imports torch for it (~0.5 GB RSS)

    def __init__(self, device: str = "cpu", pretrained: bool = True, weights_path: str | Path | None = None):
        super().__init__(device, pretrained, weights_path)
        if weights_path is None and not pretrained:
            raise UsageError("yamnet has no random-weights variant (it is a fixed int8 TFLite model); "
                             "use pretrained weights")
        self.net = self.read_weights(self.resolve_weights(), YamnetTFLite)

    def embed_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(clips), self.spec.dim), dtype=np.float32)
        for i, clip in enumerate(clips):
            embs, _ = self.net.run(yamnet_patches(np.asarray(clip, dtype=np.float32).reshape(-1)))
            out[i] = embs.mean(axis=0)
        return out

    def scores(self, clip: np.ndarray) -> np.ndarray:
        """Mean AudioSet class scores (521) of one clip: a sanity check of the whole chain."""
        _, s = self.net.run(yamnet_patches(np.asarray(clip, dtype=np.float32).reshape(-1)))
        return s.mean(axis=0)
