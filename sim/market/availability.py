"""Spot availability: whether spot capacity can be had in one AZ, over simulated time.

An :class:`AvailabilitySeries` is a step function built from Can't-Be-Late traces
(``{"metadata": {"gap_seconds": N}, "data": [v0, v1, ...]}``; ``v > 0`` means a spot
instance was available/running during that tick). Tick ``i`` covers
``[i * gap - offset_s, (i + 1) * gap - offset_s)``. :func:`replay_availability` gives
each scenario AZ its trace, :func:`availability_from_path` maps a folder of traces to
AZs by file name, and :func:`reclaimed_indices` picks the spot nodes a reclaim hits.
Times are seconds from ``t = 0``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.market.steps import check_duration, check_step_times, frozen_array
from sim.scenario import AlwaysAvailable, ReplayedAvailability

DURATION_TOLERANCE_S = 1e-6
"""Slack when checking that a trace covers offset + duration (float rounding)."""


@dataclass(frozen=True, slots=True, eq=False)
class AvailabilitySeries:
    """Whether spot capacity can be had in one AZ, as a step function of simulated time.

    Attributes
    ----------
    times_s
        float64, strictly increasing, first element 0.0; the state ``available[i]``
        holds on ``[times_s[i], times_s[i + 1])`` (seconds), the last one for ever.
    available
        bool, same length. Equal consecutive states are merged on construction, so
        every later element of ``times_s`` is a real transition.
    source
        Where the series came from (a file path, or ``"always"``).
    """

    times_s: np.ndarray
    available: np.ndarray
    source: str

    def __post_init__(self) -> None:
        times = np.array(self.times_s, dtype=np.float64)
        states = np.array(self.available, dtype=bool)
        check_step_times(times, "AvailabilitySeries.times_s")
        if states.shape != times.shape:
            raise ValueError(f"available shape {states.shape} != times shape {times.shape}")
        keep = np.ones(len(states), dtype=bool)
        keep[1:] = states[1:] != states[:-1]
        object.__setattr__(self, "times_s", frozen_array(times[keep], np.float64))
        object.__setattr__(self, "available", frozen_array(states[keep], np.bool_))

    def available_at(self, t_s: float) -> bool:
        """Whether spot capacity is available at time ``t_s`` (s)."""
        k = max(int(np.searchsorted(self.times_s, t_s, side="right")) - 1, 0)
        return bool(self.available[k])

    def available_at_many(self, times_s: np.ndarray) -> np.ndarray:
        """:meth:`available_at` at each of ``times_s`` (s): bool, shaped like it."""
        k = np.maximum(np.searchsorted(self.times_s, times_s, side="right") - 1, 0)
        return np.asarray(self.available[k], dtype=bool)

    def transitions(self) -> list[tuple[float, bool]]:
        """``(time_s, new_state)`` for every change after t=0, in time order."""
        return [
            (float(t), bool(a)) for t, a in zip(self.times_s[1:], self.available[1:], strict=True)
        ]

    def unavailable_fraction(self, t0_s: float, t1_s: float) -> float:
        """Fraction (0..1) of ``[t0_s, t1_s]`` (s) during which capacity is unavailable.

        For ``t0_s == t1_s`` this is 1.0 if unavailable at that instant, else 0.0.
        """
        if not t1_s >= t0_s:
            raise ValueError(f"t1_s(={t1_s}) must be >= t0_s(={t0_s})")
        if t1_s == t0_s:
            return 0.0 if self.available_at(t0_s) else 1.0
        starts = self.times_s.copy()
        starts[0] = -math.inf
        ends = np.append(self.times_s[1:], math.inf)
        overlap = np.clip(ends, t0_s, t1_s) - np.clip(starts, t0_s, t1_s)
        return float(np.sum(overlap[~self.available]) / (t1_s - t0_s))


def always_available() -> AvailabilitySeries:
    """Spot capacity that never runs out."""
    return AvailabilitySeries(np.array([0.0]), np.array([True]), "always")


def load_availability_trace(
    path: Path, *, offset_s: float, duration_s: float
) -> AvailabilitySeries:
    """Read a Can't-Be-Late trace JSON into an availability step function.

    Parameters
    ----------
    path
        ``{"metadata": {"gap_seconds": N}, "data": [v0, v1, ...]}``; ``N > 0``
        seconds per tick, each ``v`` a non-negative number. ``v > 0`` means
        available (for N-node traces: at least one instance).
    offset_s
        Seconds into the trace at simulated ``t = 0`` (>= 0).
    duration_s
        Run length in seconds; ``offset_s + duration_s`` must fit in the trace.

    Raises
    ------
    InputError
        Missing file, invalid JSON, a bad ``metadata.gap_seconds`` or ``data[i]``,
        or a trace shorter than ``offset_s + duration_s`` (field ``duration_days``).
    """
    path = Path(path)
    if offset_s < 0:
        raise ValueError(f"offset_s(={offset_s}) must be >= 0")
    check_duration(duration_s)
    gap, values = _read_trace(path)
    _check_covers(path, gap * len(values), offset_s, duration_s)
    first = min(int(offset_s // gap), len(values) - 1)
    last = min(int((offset_s + duration_s) // gap), len(values) - 1)
    ticks = np.arange(first + 1, last + 1)
    up = values > 0
    changed = ticks[up[ticks] != up[ticks - 1]]
    times = changed * gap - offset_s
    keep = (times > 0.0) & (times <= duration_s)
    return AvailabilitySeries(
        np.concatenate(([0.0], times[keep])),
        np.concatenate(([up[first]], up[changed[keep]])),
        str(path),
    )


def _read_trace(path: Path) -> tuple[float, np.ndarray]:
    """Validated ``(gap_seconds, values)`` of a trace JSON file."""
    if not path.is_file():
        raise InputError(path, "", "availability trace not found", allowed="an existing JSON file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, "", f"cannot read availability trace: {exc}") from None
    except RecursionError:
        raise InputError(path, "", "JSON nested too deeply", "a trace JSON object") from None
    if not isinstance(doc, dict):
        raise InputError(
            path,
            "",
            f"top level is a {type(doc).__name__}",
            allowed='{"metadata": {"gap_seconds": N}, "data": [...]}',
        )
    return _trace_gap(path, doc), _trace_values(path, doc)


def _is_number(value: object) -> bool:
    """A finite JSON number (not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _trace_gap(path: Path, doc: dict[str, object]) -> float:
    """``metadata.gap_seconds`` as a positive float."""
    meta = doc.get("metadata")
    gap = meta.get("gap_seconds") if isinstance(meta, dict) else None
    if not (_is_number(gap) and float(gap) > 0):  # type: ignore[arg-type]
        raise InputError(
            path, "metadata.gap_seconds", f"got {gap!r}", allowed="a number of seconds > 0"
        )
    return float(gap)  # type: ignore[arg-type]


def _trace_values(path: Path, doc: dict[str, object]) -> np.ndarray:
    """``data`` as a float array of non-negative values."""
    data = doc.get("data")
    if not isinstance(data, list) or not data:
        raise InputError(
            path,
            "data",
            f"got {type(data).__name__}" + (" (empty)" if isinstance(data, list) else ""),
            allowed="a non-empty list of numbers >= 0",
        )
    for i, value in enumerate(data):
        if not (_is_number(value) and value >= 0):
            raise InputError(path, f"data[{i}]", f"got {value!r}", allowed="a number >= 0")
    return np.asarray(data, dtype=np.float64)


def _check_covers(path: Path, length_s: float, offset_s: float, duration_s: float) -> None:
    """InputError unless the trace covers ``[offset_s, offset_s + duration_s]``."""
    if offset_s + duration_s <= length_s + DURATION_TOLERANCE_S:
        return
    raise InputError(
        path,
        "duration_days",
        f"offset {offset_s / 3600:g} h + duration {duration_s / 3600:g} h runs past the end: "
        f"the trace covers only {length_s / 3600:.1f} h",
        allowed=f"duration_days <= {max(length_s - offset_s, 0.0) / 86400:.2f} at this offset",
    )


def replay_availability(
    cfg: ReplayedAvailability | AlwaysAvailable,
    *,
    base_dir: Path,
    azs: list[str],
    duration_s: float,
) -> dict[str, AvailabilitySeries]:
    """Spot availability per scenario AZ from ``pricing.spot_availability``.

    Parameters
    ----------
    cfg
        ``kind: always`` -> :func:`always_available` everywhere; ``kind: replay`` ->
        ``cfg.files[az]`` (relative to ``base_dir``) read from ``cfg.offset_h`` hours.
    base_dir
        Directory relative paths are resolved against.
    azs
        Scenario AZs that need a series; each must be a key of ``cfg.files``.
    duration_s
        Run length in seconds.
    """
    if isinstance(cfg, AlwaysAvailable):
        return {az: always_available() for az in azs}
    missing = [az for az in azs if az not in cfg.files]
    if missing:
        raise InputError(
            "scenario",
            "pricing.spot_availability.files",
            f"no trace for AZ {missing[0]}",
            allowed=f"one entry per pool AZ {sorted(set(azs))}; files has {sorted(cfg.files)}",
        )
    loaded: dict[Path, AvailabilitySeries] = {}
    out: dict[str, AvailabilitySeries] = {}
    for az in azs:
        path = Path(base_dir) / cfg.files[az]
        if path not in loaded:
            loaded[path] = load_availability_trace(
                path, offset_s=cfg.offset_h * 3600.0, duration_s=duration_s
            )
        out[az] = loaded[path]
    return out


def availability_from_path(
    path: Path, *, azs: list[str], duration_s: float
) -> dict[str, AvailabilitySeries]:
    """Availability for ``--spot-availability PATH`` (a file or a directory), offset 0.

    Parameters
    ----------
    path
        A trace JSON file (used for every AZ) or a directory of ``*.json`` traces
        (not recursive).
    azs
        Scenario AZs that need a series.
    duration_s
        Run length in seconds.

    Notes
    -----
    In a directory, a file whose name starts with the AZ name followed by a
    non-alphanumeric character (``us-east-1c_v100_1.json`` for ``us-east-1c``) is
    that AZ's trace (the first such in sorted order). AZs without a file of their
    own take, round-robin in the order of ``azs``, the files not claimed by any
    requested AZ in sorted name order, or all files if every file is claimed. Thus
    two unmatched AZs get different traces whenever the directory has enough.
    """
    path = Path(path)
    if path.is_file():
        series = load_availability_trace(path, offset_s=0.0, duration_s=duration_s)
        return {az: series for az in azs}
    if not path.is_dir():
        raise InputError(
            "--spot-availability",
            "",
            f"{path} does not exist",
            allowed="a trace JSON file or a directory of them",
        )
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".json")
    if not files:
        raise InputError(
            "--spot-availability",
            "",
            f"{path} has no *.json trace files",
            allowed="a directory of Can't-Be-Late trace JSON files",
        )
    chosen = _assign_files(files, azs)
    loaded: dict[Path, AvailabilitySeries] = {}
    for file in dict.fromkeys(chosen.values()):
        loaded[file] = load_availability_trace(file, offset_s=0.0, duration_s=duration_s)
    return {az: loaded[chosen[az]] for az in azs}


def _assign_files(files: list[Path], azs: list[str]) -> dict[str, Path]:
    """Map each AZ to its own file, else round-robin over the unclaimed files."""
    own = {az: next((f for f in files if _names_az(f.name, az)), None) for az in azs}
    claimed = {f for f in own.values() if f is not None}
    spare = [f for f in files if f not in claimed] or files
    out: dict[str, Path] = {}
    k = 0
    for az in azs:
        match = own[az]
        if match is None:
            match, k = spare[k % len(spare)], k + 1
        out[az] = match
    return out


def _names_az(filename: str, az: str) -> bool:
    """``filename`` starts with ``az`` followed by a non-alphanumeric character."""
    if not filename.startswith(az):
        return False
    rest = filename[len(az) :]
    return not rest or not rest[0].isalnum()


def reclaimed_indices(n_nodes: int, fraction: float, rng: np.random.Generator) -> list[int]:
    """Which of ``n_nodes`` spot nodes a reclaim of ``fraction`` of them hits (sorted
    indices): ``ceil(fraction * n_nodes)`` drawn without replacement from ``rng``, all of
    them (no draw) when that is every node. The simulator and the cost environment both
    call this, so the same stream picks the same nodes."""
    k = math.ceil(fraction * n_nodes - 1e-9)
    if k >= n_nodes:
        return list(range(n_nodes))
    return sorted(rng.choice(n_nodes, size=k, replace=False).tolist())
