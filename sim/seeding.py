"""One root seed per run, split into independent, named child generators.

Each simulator component (workload noise, provisioning delays, faults, spot market,
audit events, policies) draws only from its own :class:`numpy.random.Generator`.
Children are keyed by the component's *name* (not by creation order), so adding a
component never changes the random stream of another one, and a replay is
byte-identical in any process on any machine.
"""

from __future__ import annotations

import zlib

import numpy as np


def component_rng(root_seed: int, component: str) -> np.random.Generator:
    """A PCG64 generator for ``component``, derived from ``root_seed``.

    Parameters
    ----------
    root_seed
        The run's root seed (a non-negative integer).
    component
        A stable component name, e.g. ``"faults"`` or ``"provisioning"``.
    """
    if root_seed < 0:
        raise ValueError(f"root_seed(={root_seed}) must be >= 0")
    key = zlib.crc32(component.encode("utf-8"))
    seq = np.random.SeedSequence(entropy=root_seed, spawn_key=(key,))
    return np.random.Generator(np.random.PCG64(seq))
