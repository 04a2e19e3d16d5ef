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
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    try:
        yield seed_everything(seed), dev
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


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
