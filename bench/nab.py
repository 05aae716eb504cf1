"""The Numenta Anomaly Benchmark (NAB) scorer, written from the rules in
``scenarios/data/nab/README.md``.

Domain model. A *corpus* is a set of files; each file has ``N`` rows (row positions, never
timestamps, are what is scored) and zero or more labelled anomaly *windows*, each an inclusive
row range ``[L, R]``. A detector gives every row an ``anomaly_score`` in [0, 1] and *fires* on
a row when the score reaches one threshold theta shared by the whole corpus. At theta, a file's raw
score is: for every window, the value of its earliest detection (``A_TP · sig(y)/sig(-1)``, early
detections are worth more) or ``-A_FN`` when it has none; plus, for every detection outside the
windows, a penalty ``A_FP · sig(y)`` (small just after a window, ``-A_FP`` elsewhere). The first
``P = min(floor(0.15 N), 750)`` rows are a probationary period: neither rewarded nor penalised.
theta is chosen per profile to maximise the corpus raw score (an exhaustive sweep over every
distinct score), which is then normalised to 100 · (S - S_null)/(S_perfect - S_null).

Everything here is unit-free (scores, weights, row counts).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from sim.errors import InputError

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750
NEVER_FIRE = 1.1  # the threshold above every score ("never alert")
TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Profile(BaseModel):
    """An application profile: the weights of true positives, false positives and misses.

    ``tn`` is part of NAB's cost matrix but has no effect on the score.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tp: float = Field(gt=0, description="reward of a detection on a window's first row")
    fp: float = Field(ge=0, description="penalty of a false positive far from any window")
    fn: float = Field(ge=0, description="penalty of a window with no detection")
    tn: float = Field(default=1.0, description="unused by the score")


PROFILES: dict[str, Profile] = {
    "standard": Profile(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Profile(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Profile(tp=1.0, fp=0.11, fn=2.0),
}


def probation_rows(n_rows: int) -> int:
    """Rows at the start of a file that are neither rewarded nor penalised."""
    return min(math.floor(PROBATION_FRACTION * n_rows), PROBATION_MAX_ROWS)


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid: about +1 at y = -1, 0 at y = 0, -1 for y > 3."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def _sigmoid_array(y: FloatArray) -> FloatArray:
    """:func:`scaled_sigmoid` applied element-wise."""
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, out)


@dataclass(frozen=True)
class ScoredFile:
    """One file's rows as the scorer sees them.

    Attributes
    ----------
    name
        The file's corpus key (``category/file.csv``), for reports.
    scores
        ``anomaly_score`` per row, in [0, 1].
    windows
        Inclusive row ranges ``(L, R)`` of the labelled windows, in order, not overlapping.
    """

    name: str
    scores: FloatArray
    windows: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        prev_right = -1
        n = len(self.scores)
        for left, right in self.windows:
            if not (0 <= left <= right < n) or left <= prev_right:
                raise ValueError(
                    f"{self.name}: window rows ({left}, {right}) must lie in [0, {n - 1}], "
                    "in order and not overlap"
                )
            prev_right = right


@dataclass(frozen=True)
class ProfileResult:
    """The outcome of scoring a corpus under one profile.

    Attributes
    ----------
    profile
        The profile's name.
    threshold
        theta: a row fires when its score is >= theta (``NEVER_FIRE`` = never).
    raw
        The corpus raw score at theta.
    normalised
        100 · (raw - null) / (perfect - null).
    perfect, null
        The raw scores of the perfect and null detectors on the same corpus.
    tp, fp, fn
        Windows detected, detections outside any window, windows missed (scored rows only).
    """

    profile: str
    threshold: float
    raw: float
    normalised: float
    perfect: float
    null: float
    tp: int
    fp: int
    fn: int


def row_values(
    n_rows: int, windows: Sequence[tuple[int, int]], profile: Profile
) -> tuple[FloatArray, IntArray]:
    """The value a detection would have on each row, and each row's window index (-1: none).

    Inside window ``w``: ``A_TP · sig(-(R - i + 1)/W)/sig(-1)``. After a window ``p``:
    ``A_FP · sig((i - R_p)/(W_p - 1))``. Before any window: ``-A_FP``.
    """
    values = np.full(n_rows, -profile.fp, dtype=np.float64)
    window_of = np.full(n_rows, -1, dtype=np.int64)
    for k, (left, right) in enumerate(windows):
        width = right - left + 1
        inside = np.arange(left, right + 1)
        values[inside] = profile.tp * _sigmoid_array(-(right - inside + 1) / width) / MAX_TP
        window_of[left : right + 1] = k
        end = windows[k + 1][0] if k + 1 < len(windows) else n_rows
        after = np.arange(right + 1, end)
        y = (after - right) / (width - 1) if width > 1 else np.full(len(after), np.inf)
        values[after] = profile.fp * _sigmoid_array(y)
    return values, window_of


def _scored_windows(f: ScoredFile) -> list[int]:
    """Indices of the windows that have at least one row after the probationary period."""
    start = probation_rows(len(f.scores))
    return [k for k, (_, right) in enumerate(f.windows) if right >= start]


def perfect_score(files: Sequence[ScoredFile], profile: Profile) -> float:
    """Raw score of the detector that fires on the first row of every window only."""
    return profile.tp * sum(len(_scored_windows(f)) for f in files)


def _sweep(
    files: Sequence[ScoredFile], profile: Profile
) -> tuple[FloatArray, FloatArray, IntArray, IntArray, IntArray, float]:
    """Raw score after each distinct threshold, in descending order of threshold.

    Returns the thresholds, the raw scores, the tp/fp/fn counts at each threshold and the
    score of "never fire". The sweep adds rows to the detection set in descending order of
    score; a window's contribution is the best (earliest) detection value so far, floored at
    ``-A_FN``; every row outside the windows adds its own (negative) value.
    """
    scores: list[FloatArray] = []
    values: list[FloatArray] = []
    groups: list[IntArray] = []
    n_windows = 0
    for f in files:
        v, w = row_values(len(f.scores), f.windows, profile)
        start = probation_rows(len(f.scores))
        scored = set(_scored_windows(f))
        keep = np.arange(len(f.scores)) >= start
        scores.append(np.asarray(f.scores, dtype=np.float64)[keep])
        values.append(v[keep])
        local = w[keep]
        if not all(int(k) in scored for k in np.unique(local[local >= 0])):
            raise AssertionError("a window with scored rows must be counted")
        groups.append(np.where(local >= 0, local + n_windows, -1))
        n_windows += len(f.windows)
    never = -profile.fn * sum(len(_scored_windows(f)) for f in files)
    if not scores:
        empty_f = np.zeros(0, dtype=np.float64)
        empty_i = np.zeros(0, dtype=np.int64)
        return empty_f, empty_f, empty_i, empty_i, empty_i, never
    s = np.concatenate(scores)
    v = np.concatenate(values)
    g = np.concatenate(groups)
    order = np.argsort(-s, kind="stable")
    s, v, g = s[order], v[order], g[order]
    in_window: IntArray = (g >= 0).astype(np.int64)
    # Outside windows: every detection adds its value.
    delta = np.where(in_window == 1, 0.0, v)
    # Inside windows: the gain is the rise of the window's running best (floored at -A_FN).
    best = np.full(n_windows, -profile.fn)
    first_hit = np.zeros(len(s), dtype=np.int64)
    seen = np.zeros(n_windows, dtype=bool)
    for i in np.flatnonzero(in_window).tolist():
        k = g[i]
        if not seen[k]:
            seen[k] = True
            first_hit[i] = 1
        if v[i] > best[k]:
            delta[i] = v[i] - best[k]
            best[k] = v[i]
    raw = never + np.cumsum(delta)
    tp = np.cumsum(first_hit)
    fp = np.cumsum(1 - in_window)
    # The score at threshold theta includes every row with score >= theta: the last row of each run.
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    n_scored_windows = _count_windows(files)
    return (
        s[last],
        raw[last],
        tp[last],
        fp[last],
        n_scored_windows - tp[last],
        never,
    )


def null_score(files: Sequence[ScoredFile], profile: Profile) -> float:
    """Raw score of the null detector (constant 0.5 everywhere) after threshold optimisation."""
    null_files = [ScoredFile(f.name, np.full(len(f.scores), 0.5), f.windows) for f in files]
    _, raw, _, _, _, never = _sweep(null_files, profile)
    return float(max([never, *raw.tolist()]))


def _count_windows(files: Sequence[ScoredFile]) -> int:
    return sum(len(_scored_windows(f)) for f in files)


def optimise(files: Sequence[ScoredFile], name: str, profile: Profile) -> ProfileResult:
    """Score the corpus at the threshold that maximises its raw score under ``profile``.

    Ties go to the highest threshold (fewest alerts).
    """
    thresholds, raw, tp, fp, fn, never = _sweep(files, profile)
    best_t, best_raw, best_tp, best_fp = NEVER_FIRE, never, 0, 0
    best_fn = _count_windows(files)
    if len(raw):
        i = int(np.argmax(raw))  # first maximum = highest threshold
        if raw[i] > never:
            best_t, best_raw = float(thresholds[i]), float(raw[i])
            best_tp, best_fp, best_fn = int(tp[i]), int(fp[i]), int(fn[i])
    return _result(files, name, profile, best_t, best_raw, best_tp, best_fp, best_fn)


def score_at(
    files: Sequence[ScoredFile], name: str, profile: Profile, threshold: float
) -> ProfileResult:
    """Score the corpus at a threshold fixed in advance (rows with score >= theta fire)."""
    thresholds, raw, tp, fp, fn, never = _sweep(files, profile)
    reached = np.flatnonzero(thresholds >= threshold)
    if len(reached) == 0:
        return _result(files, name, profile, threshold, never, 0, 0, _count_windows(files))
    i = int(reached[-1])
    return _result(
        files, name, profile, threshold, float(raw[i]), int(tp[i]), int(fp[i]), int(fn[i])
    )


def _result(
    files: Sequence[ScoredFile],
    name: str,
    profile: Profile,
    threshold: float,
    raw: float,
    tp: int,
    fp: int,
    fn: int,
) -> ProfileResult:
    perfect = perfect_score(files, profile)
    null = null_score(files, profile)
    span = perfect - null
    normalised = 100.0 * (raw - null) / span if span > 0 else 0.0
    return ProfileResult(name, threshold, raw, normalised, perfect, null, tp, fp, fn)


def score_corpus(
    files: Sequence[ScoredFile], profiles: Mapping[str, Profile] | None = None
) -> dict[str, ProfileResult]:
    """Every profile's optimised result (NAB's published convention)."""
    chosen = PROFILES if profiles is None else profiles
    return {name: optimise(files, name, p) for name, p in chosen.items()}


# ---------------------------------------------------------------------------------------------
# Files: windows JSON, profiles JSON, timestamps.


def parse_timestamp(text: str, source: str | Path, field: str) -> datetime:
    """A NAB timestamp (``YYYY-MM-DD HH:MM:SS`` with optional fraction) as a naive datetime."""
    for fmt in TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise InputError(
        source, field, f"bad timestamp {text!r}", allowed="YYYY-MM-DD HH:MM:SS[.ffffff]"
    )


def load_windows(path: Path) -> dict[str, list[tuple[datetime, datetime]]]:
    """``combined_windows.json``: corpus key → list of inclusive (start, end) timestamps."""
    if not path.is_file():
        raise InputError(path, "", "windows file not found", allowed="an existing JSON file")
    allowed = 'an object {"category/file.csv": [["start", "end"], ...]}'
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, "", f"cannot read windows JSON: {exc}") from exc
    except RecursionError:  # the JSON parser recurses per nesting level
        raise InputError(path, "", "JSON nested too deeply to read", allowed=allowed) from None
    if not isinstance(raw, dict):
        raise InputError(path, "", "top level is not an object", allowed=allowed)
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    for key, pairs in raw.items():
        if not isinstance(pairs, list):
            raise InputError(path, key, "not a list of [start, end] pairs", allowed=allowed)
        windows: list[tuple[datetime, datetime]] = []
        for j, pair in enumerate(pairs):
            field = f"{key}[{j}]"
            if not (
                isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
            ):
                raise InputError(path, field, f"bad window {pair!r}", allowed=allowed)
            start = parse_timestamp(pair[0], path, field)
            end = parse_timestamp(pair[1], path, field)
            if end < start:
                raise InputError(
                    path,
                    field,
                    f"window ends ({end}) before it starts ({start})",
                    allowed="start <= end",
                )
            if windows and start <= windows[-1][1]:
                raise InputError(
                    path,
                    field,
                    "window overlaps or precedes the previous one",
                    allowed="windows in time order, not overlapping",
                )
            windows.append((start, end))
        out[str(key)] = windows
    return out


def window_rows(
    timestamps: Sequence[datetime],
    windows: Iterable[tuple[datetime, datetime]],
    source: str | Path,
) -> tuple[tuple[int, int], ...]:
    """Row ranges of windows given as timestamps: the first row stamped with each end.

    Both ends must be timestamps of rows in the file (NAB's convention); files may repeat a
    timestamp, in which case its first row is used, as NAB's own scorer does.
    """
    first: dict[datetime, int] = {}
    for i, t in enumerate(timestamps):
        first.setdefault(t, i)
    rows: list[tuple[int, int]] = []
    for start, end in windows:
        for t in (start, end):
            if t not in first:
                raise InputError(
                    source,
                    f"window {start} .. {end}",
                    f"{t} is not a timestamp of any row",
                    allowed="window ends that are timestamps of rows in the data file",
                )
        left, right = first[start], first[end]
        if right < left or (rows and left <= rows[-1][1]):
            raise InputError(
                source,
                f"window {start} .. {end}",
                f"maps to rows {left}..{right}, out of order or overlapping the previous window",
                allowed="windows in row order, not overlapping",
            )
        rows.append((left, right))
    return tuple(rows)


def as_dict(result: ProfileResult) -> dict[str, float | int | str]:
    """A result as a JSON-friendly dict."""
    return {
        "profile": result.profile,
        "score": round(result.normalised, 4),
        "threshold": result.threshold,
        "raw": round(result.raw, 6),
        "perfect": result.perfect,
        "null": result.null,
        "tp": result.tp,
        "fp": result.fp,
        "fn": result.fn,
    }
