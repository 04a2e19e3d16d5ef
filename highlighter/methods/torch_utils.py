"""Training-loop control shared by every trainable detector: seed, threads, determinism, device.

Why one helper: a run must be reproducible from its seed (and thread count: float
sums depend on how work is split), and ``--device`` must mean the same thing for
every method. Each detector's ``_fit`` wraps its loop in `training_run`.
"""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch

from highlighter.features.device import resolve_device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch; return a torch.Generator for data order / masks.

    Data order and random masks draw from the returned generator (not the global
    RNG) so that adding a random op elsewhere cannot change the batches.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@contextlib.contextmanager
def training_run(seed: int, threads: int | None = 1, device: str = "auto") -> Iterator[tuple[torch.Generator, str]]:
    """A seeded, deterministic block with ``threads`` intra-op threads; yields (generator, device).

    The device is resolved first (an unavailable ``cuda`` fails before any work);
    torch's previous determinism and thread settings are restored on exit.
    """
    dev = resolve_device(device)
    prev_det = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    prev_threads = torch.get_num_threads()
    _deterministic(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    try:
        yield seed_everything(seed), dev
    finally:
        _deterministic(*prev_det)
        torch.set_num_threads(prev_threads)


def _deterministic(mode: bool, warn_only: bool) -> None:
    """`torch.use_deterministic_algorithms` without its import of ``torch._inductor`` (sympy, ~900
    modules, +150 MB RSS: issue 14) when nothing compiled has loaded it; we never compile."""
    import sys

    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


class RMSprop:
    """``torch.optim.RMSprop(params, lr)`` with its defaults (alpha 0.99, eps 1e-8, no momentum,
    not centred): the same update, op for op (bit-identical scores, tested), without
    ``torch.optim``, whose first call imports torch._dynamo and sympy (+150 MB RSS at detect
    time: issue 14). Only what the training loops call: ``zero_grad``, ``step``."""

    def __init__(self, params, lr: float, alpha: float = 0.99, eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.square_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p, sq in zip(self.params, self.square_avg):
            if p.grad is not None:
                sq.mul_(self.alpha).addcmul_(p.grad, p.grad, value=1 - self.alpha)
                p.addcdiv_(p.grad, sq.sqrt().add_(self.eps), value=-self.lr)


def iter_batches(n: int, batch_size: int, generator: torch.Generator | None = None,
                 shuffle: bool = True) -> Iterator[np.ndarray]:
    """Index batches over ``n`` items; the order comes from ``generator`` only."""
    order = torch.randperm(n, generator=generator).numpy() if shuffle else np.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def iter_length_batches(lengths: list[int], batch_size: int, generator: torch.Generator) -> Iterator[np.ndarray]:
    """Batches of videos of similar length, in random order: padding (wasted compute) stays small.

    Videos are ordered by length (random tie-break), cut into batches, and the batches shuffled.
    """
    n = len(lengths)
    jitter = torch.rand(n, generator=generator).numpy()
    order = np.lexsort((jitter, np.asarray(lengths)))
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    for b in torch.randperm(len(batches), generator=generator).numpy():
        yield batches[b]
