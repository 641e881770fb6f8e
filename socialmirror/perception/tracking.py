"""Identities across frames, the closest pair, and the crop around it.

``track(detections_per_frame)`` links per-frame ``PersonDetection`` lists into ``Tracks``:

1. Frame to frame: tracks seen within the last ``max_gap`` frames are matched to the frame's detections by
   the Hungarian method (``scipy.optimize.linear_sum_assignment``) on a cost that mixes the box overlap
   (1 - IoU of the detection's box with the track's box moved by its recent velocity), the normalised
   keypoint distance (median over the body keypoints seen in both, divided by the track's body scale) and,
   where detections carry one, the appearance distance. A pair whose boxes do not overlap and whose keypoints
   are more than one body scale apart can never match, and matches costing more than ``max_cost`` are refused.
   This survives swaps of detection order (the cost does not care about list positions) and bridges short
   misses (a track stays matchable for ``max_gap`` frames; ``Tracks.fill_gaps`` interpolates such holes).
2. Re-entry: detections left over are compared with tracks lost for more than ``max_gap`` but at most
   ``reentry_window`` frames, on appearance (colour histograms of torso and thighs, see
   ``appearance_descriptor``) and body proportions (bone-length ratios from the metric world landmarks).
   A good enough match takes the old id back; anything else starts a new track.

3. Clothes: where people overlap, the frame-to-frame matching can follow the places and swap the people; each
   frame's detections then go to the tracks whose clothes (their appearance over the whole video) they show
   (``settle_identities``).

4. Fragments: where the frame-to-frame matching split one person into two ids taking turns (or one ending
   where the other begins), tracks that are almost never seen together and continue each other at the same
   place are joined (``join_fragments``).

``select_closest_pair`` picks the two tracks closest to each other over the video; ``pair_crop_boxes`` gives the
per-frame crop around them for the annotator. ``Tracks`` is the cached output of the perception stage
(``save``/``load`` to ``.npz``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from socialmirror.body.keypoints import BODY_KEYPOINTS, KEYPOINT_NAMES, NUM_KEYPOINTS, UPPER_BODY_KEYPOINTS, body_scale
from socialmirror.errors import InputError
from socialmirror.geometry.camera import box_iou
from socialmirror.perception.pose import PersonDetection, same_upper_body

# --------------------------------------------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Tracks:
    """People tracked through a video; arrays are indexed [track, frame, ...] in the order of ``ids``.

    Where a track is not seen in a frame its keypoints' x, y and its world landmarks and box are NaN, and its
    keypoint confidences and score are 0.
    """

    ids: np.ndarray                 # (N,) int64 track ids
    keypoints: np.ndarray           # (N, T, 33, 3) float32: x, y pixels, confidence
    world: np.ndarray               # (N, T, 33, 3) float32: metres, hip-centred (MediaPipe world landmarks)
    boxes: np.ndarray               # (N, T, 4) float32: x0, y0, x1, y1 pixels
    scores: np.ndarray              # (N, T) float32: detection score
    fps: float = 30.0
    image_size: tuple[int, int] = (0, 0)  # (width, height)
    keypoint_names: tuple[str, ...] = KEYPOINT_NAMES
    interpolated: np.ndarray | None = None  # (N, T) bool: filled by fill_gaps, not detected
    meta: dict = field(default_factory=dict)  # JSON-serialisable notes (timings, detector settings, ...)

    def __post_init__(self):
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        n = len(self.ids)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        t = self.keypoints.shape[1] if self.keypoints.ndim == 4 else 0
        self.keypoints = self.keypoints.reshape(n, t, len(self.keypoint_names), 3)
        self.world = np.asarray(self.world, dtype=np.float32).reshape(n, t, len(self.keypoint_names), 3)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(n, t, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(n, t)
        self.interpolated = (np.zeros((n, t), dtype=bool) if self.interpolated is None
                             else np.asarray(self.interpolated, dtype=bool).reshape(n, t))
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        self.keypoint_names = tuple(str(k) for k in self.keypoint_names)
        self.fps = float(self.fps)

    @property
    def num_tracks(self) -> int:
        return len(self.ids)

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[1]

    @property
    def present(self) -> np.ndarray:
        """(N, T) bool: the track has a box in that frame (detected or interpolated)."""
        return np.isfinite(self.boxes).all(axis=-1)

    def index(self, track_id: int) -> int:
        hits = np.flatnonzero(self.ids == track_id)
        if len(hits) == 0:
            raise KeyError(f"no track with id {track_id} (ids: {self.ids.tolist()})")
        return int(hits[0])

    def subset(self, track_ids: Sequence[int]) -> "Tracks":
        """The given tracks, in the given order."""
        idx = [self.index(i) for i in track_ids]
        return Tracks(self.ids[idx], self.keypoints[idx], self.world[idx], self.boxes[idx], self.scores[idx],
                      self.fps, self.image_size, self.keypoint_names, self.interpolated[idx], dict(self.meta))

    def pair_keypoints(self, pair: Sequence[int]) -> np.ndarray:
        """(T, 2, 33, 3) keypoints of two tracks (the layout of ``result.npz``'s ``keypoints2d``)."""
        idx = [self.index(i) for i in pair]
        return np.ascontiguousarray(self.keypoints[idx].transpose(1, 0, 2, 3))

    def pair_world(self, pair: Sequence[int]) -> np.ndarray:
        """(T, 2, 33, 3) world landmarks of two tracks (metres, hip-centred; NaN where not seen)."""
        idx = [self.index(i) for i in pair]
        return np.ascontiguousarray(self.world[idx].transpose(1, 0, 2, 3))

    def fill_gaps(self, max_gap: int = 10) -> "Tracks":
        """A copy where holes of at most ``max_gap`` frames inside a track are linearly interpolated
        (keypoints, world landmarks, boxes); filled keypoints get half the smaller neighbouring confidence and
        ``interpolated`` marks the frames."""
        out = Tracks(self.ids.copy(), self.keypoints.copy(), self.world.copy(), self.boxes.copy(),
                     self.scores.copy(), self.fps, self.image_size, self.keypoint_names,
                     self.interpolated.copy(), dict(self.meta))
        present = self.present
        for n in range(self.num_tracks):
            seen = np.flatnonzero(present[n])
            for a, b in zip(seen[:-1], seen[1:]):
                if 1 < b - a <= max_gap + 1:
                    ka, kb = self.keypoints[n, a], self.keypoints[n, b]
                    for f in range(a + 1, b):
                        w = (f - a) / (b - a)
                        out.keypoints[n, f, :, :2] = (1 - w) * ka[:, :2] + w * kb[:, :2]
                        out.keypoints[n, f, :, 2] = 0.5 * np.minimum(ka[:, 2], kb[:, 2])
                        out.world[n, f] = (1 - w) * self.world[n, a] + w * self.world[n, b]
                        out.boxes[n, f] = (1 - w) * self.boxes[n, a] + w * self.boxes[n, b]
                        out.scores[n, f] = 0.0
                        out.interpolated[n, f] = True
        return out

    # -- persistence -----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (it is the perception stage's cache: a half-written file must never be read)."""
        from socialmirror.io import atomic_savez
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        atomic_savez(
            path, ids=self.ids, keypoints=self.keypoints, world=self.world, boxes=self.boxes, scores=self.scores,
            fps=np.float64(self.fps), image_size=np.asarray(self.image_size, dtype=np.int64),
            keypoint_names=np.asarray(self.keypoint_names), interpolated=self.interpolated,
            meta=np.asarray(json.dumps(self.meta)), format=np.asarray("socialmirror.tracks/1"))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tracks":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"tracks file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["ids"], z["keypoints"], z["world"], z["boxes"], z["scores"], float(z["fps"]),
                           tuple(z["image_size"].tolist()), tuple(z["keypoint_names"].tolist()),
                           z["interpolated"], json.loads(str(z["meta"])))
        except (KeyError, ValueError, OSError) as exc:
            raise InputError(f"not a tracks file: {path} ({exc})") from None


# --------------------------------------------------------------------------------------------------------------
# Appearance and body-proportion signatures
# --------------------------------------------------------------------------------------------------------------

_HUE_BINS, _SAT_BINS, _GREY_BINS = 12, 3, 6
_APP_REGION = _HUE_BINS * _SAT_BINS + _GREY_BINS


def appearance_descriptor(frame_rgb: np.ndarray, keypoints: np.ndarray, min_visibility: float = 0.5,
                          downsample: int = 4) -> np.ndarray:
    """Colour signature of a person for re-identification: for the torso (shoulders-hips quadrilateral) and the
    thighs (hip-knee bands), a hue x saturation histogram of the coloured pixels plus a brightness histogram of
    the grey ones, each region L1-normalised (all zeros where the region is not visible). Cheap: computed on a
    ``downsample``-times smaller image, under 1 ms a person at 940x1280."""
    kp = np.asarray(keypoints, dtype=np.float64)
    vis = np.isfinite(kp[:, :2]).all(axis=1) & (np.nan_to_num(kp[:, 2]) >= min_visibility)
    out = np.zeros(2 * _APP_REGION, dtype=np.float32)
    used = [i for i in (11, 12, 23, 24, 25, 26) if vis[i]]
    if len(used) < 2:
        return out
    # Work on the downsampled crop around the torso and thighs only.
    scale = body_scale(kp) / downsample
    pts = kp[:, :2] / downsample
    lo = np.floor(pts[used].min(axis=0) - 0.3 * scale).astype(int)
    hi = np.ceil(pts[used].max(axis=0) + 0.3 * scale).astype(int)
    h_s, w_s = (frame_rgb.shape[0] + downsample - 1) // downsample, (frame_rgb.shape[1] + downsample - 1) // downsample
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w_s), min(hi[1], h_s)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    crop = frame_rgb[y0 * downsample:y1 * downsample:downsample, x0 * downsample:x1 * downsample:downsample]
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
    pts = np.nan_to_num(pts - np.array([x0, y0]))
    regions = []
    torso = [11, 12, 24, 23]
    if vis[torso].all():
        m = np.zeros(hsv.shape[:2], np.uint8)
        cv2.fillPoly(m, [np.round(pts[torso]).astype(np.int32)], 1)
        regions.append(m)
    else:
        regions.append(None)
    m = np.zeros(hsv.shape[:2], np.uint8)
    for a, b in ((23, 25), (24, 26)):
        if vis[a] and vis[b]:
            cv2.line(m, tuple(int(v) for v in np.round(pts[a])), tuple(int(v) for v in np.round(pts[b])), 1,
                     thickness=max(1, int(0.25 * scale)))
    regions.append(m if m.any() else None)
    for r, m in enumerate(regions):
        if m is None:
            continue
        px = hsv[m.astype(bool)]
        if len(px) < 4:
            continue
        h, s, v = px[:, 0].astype(int), px[:, 1].astype(int), px[:, 2].astype(int)
        colour = (s >= 50) & (v >= 40)
        hist = np.zeros(_APP_REGION, dtype=np.float64)
        hb = np.minimum(h[colour] * _HUE_BINS // 180, _HUE_BINS - 1)
        sb = np.minimum((s[colour] - 50) * _SAT_BINS // 206, _SAT_BINS - 1)
        np.add.at(hist, hb * _SAT_BINS + sb, 1.0)
        gb = np.minimum(v[~colour] * _GREY_BINS // 256, _GREY_BINS - 1)
        np.add.at(hist, _HUE_BINS * _SAT_BINS + gb, 1.0)
        out[r * _APP_REGION:(r + 1) * _APP_REGION] = hist / hist.sum()
    return out


def appearance_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Hellinger distance in [0, 1] averaged over the regions both descriptors have; ``None`` when none."""
    if a is None or b is None:
        return None
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.size == 0:
        return None
    distance, shared = _region_distances(a.reshape(1, -1), b.reshape(1, -1))
    return float(distance[0, 0]) if shared[0, 0] else None


def appearance_costs(models: np.ndarray, descriptors: list) -> np.ndarray:
    """(M, K) ``appearance_distance`` between M descriptors (M, D) and K more (None, all zeros or of another
    length where missing) at once; 0.5 where no region is in both (between a person's own distance, 0.1-0.2,
    and another's, 0.6-0.9)."""
    models = np.asarray(models, np.float64)
    width = models.shape[-1]
    given = np.stack([np.asarray(d, np.float64) if d is not None and np.asarray(d).shape == (width,)
                      else np.zeros(width) for d in descriptors])
    distance, shared = _region_distances(models, given)
    return np.where(shared > 0, distance, 0.5)


def _region_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Between descriptors (M, D) and (K, D): the Hellinger distance averaged over the regions both have
    (M, K), and how many regions that is (M, K)."""
    regions = max(1, a.shape[-1] // _APP_REGION) if a.shape[-1] % _APP_REGION == 0 else 1
    a, b = a.reshape(len(a), regions, -1), b.reshape(len(b), regions, -1)
    sa, sb = a.sum(-1), b.sum(-1)  # (M, R), (K, R)
    ra = np.sqrt(a / np.where(sa > 0, sa, 1.0)[..., None])
    rb = np.sqrt(b / np.where(sb > 0, sb, 1.0)[..., None])
    both = (sa > 0)[:, None, :] & (sb > 0)[None, :, :]
    distance = np.sqrt(np.clip(1.0 - np.einsum("mrw,krw->mkr", ra, rb), 0.0, None))
    shared = both.sum(-1)
    return (distance * both).sum(-1) / np.maximum(shared, 1), shared


# Bones whose lengths (relative to the torso) describe a body's proportions.
_PROPORTION_BONES = ((11, 12), (23, 24), (11, 13), (12, 14), (13, 15), (14, 16), (23, 25), (24, 26), (25, 27),
                     (26, 28))


def proportion_signature(world: np.ndarray) -> np.ndarray | None:
    """Bone lengths from metric world landmarks divided by the torso length (shoulder to hip midpoints),
    left and right averaged; ``None`` without world landmarks."""
    w = np.asarray(world, dtype=np.float64)
    if not np.isfinite(w[[11, 12, 23, 24]]).all():
        return None
    torso = np.linalg.norm(w[[11, 12]].mean(axis=0) - w[[23, 24]].mean(axis=0))
    if torso < 1e-6:
        return None
    lengths = np.array([np.linalg.norm(w[a] - w[b]) for a, b in _PROPORTION_BONES]) / torso
    sym = np.array([lengths[0], lengths[1], lengths[2:4].mean(), lengths[4:6].mean(), lengths[6:8].mean(),
                    lengths[8:10].mean()])
    return sym if np.isfinite(sym).all() else None


# --------------------------------------------------------------------------------------------------------------
# Tracker
# --------------------------------------------------------------------------------------------------------------


@dataclass
class TrackerConfig:
    """Settings of ``track``; see the module docstring."""

    max_gap: int = 10              # frames a track may be missed and still be matched frame to frame
    reentry_window: int = 300      # frames after its last sighting during which a lost track can be re-identified
    max_cost: float = 0.75         # frame-to-frame matches costing more are refused
    reentry_max_cost: float = 0.35  # re-identification matches costing more are refused
    iou_weight: float = 0.4
    keypoint_weight: float = 0.6
    appearance_weight: float = 0.3  # used only where both sides have an appearance descriptor
    keypoint_norm: float = 0.5     # normalised keypoint distance that costs the full keypoint weight
    min_keypoint_confidence: float = 0.3
    gap_penalty: float = 0.02      # added cost per missed frame (prefer recently seen tracks)
    min_score: float = 0.0         # detections below this score are ignored
    min_track_length: int = 1      # shorter tracks are dropped from the result
    # ``settle_identities``: a frame's detections change tracks where that lowers the summed appearance
    # distance to the tracks' own appearance by more than this (0: off).
    settle_margin: float = 0.15


class _Track:
    __slots__ = ("id", "frames", "dets", "velocity", "appearance", "n_app", "signature", "n_sig")

    def __init__(self, track_id: int):
        self.id = track_id
        self.frames: list[int] = []
        self.dets: list[PersonDetection] = []
        self.velocity = np.zeros(2)
        self.appearance: np.ndarray | None = None
        self.n_app = 0
        self.signature: np.ndarray | None = None
        self.n_sig = 0

    @property
    def last_frame(self) -> int:
        return self.frames[-1]

    @property
    def last(self) -> PersonDetection:
        return self.dets[-1]

    def add(self, frame: int, det: PersonDetection) -> None:
        if self.dets:
            gap = frame - self.last_frame
            step = (_centre(det.box) - _centre(self.last.box)) / max(gap, 1)
            if np.isfinite(step).all():
                self.velocity = 0.5 * self.velocity + 0.5 * step if len(self.dets) > 1 else step
        self.frames.append(frame)
        self.dets.append(det)
        if det.appearance is not None and np.asarray(det.appearance).sum() > 0:
            app = np.asarray(det.appearance, dtype=np.float64)
            self.n_app += 1
            # Running mean over the first sightings, then a slow exponential average.
            rate = max(1.0 / self.n_app, 0.1)
            self.appearance = app if self.appearance is None else (1 - rate) * self.appearance + rate * app
        sig = proportion_signature(det.world)
        if sig is not None:
            self.n_sig += 1
            rate = max(1.0 / self.n_sig, 0.1)
            self.signature = sig if self.signature is None else (1 - rate) * self.signature + rate * sig

    def predicted(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Box and keypoints moved by the recent velocity to ``frame`` (damped over long gaps)."""
        gap = frame - self.last_frame
        h = self.last.box[3] - self.last.box[1]
        shift = self.velocity * min(gap, 5)
        limit = 0.5 * h if np.isfinite(h) else 0.0
        norm = np.linalg.norm(shift)
        if norm > limit > 0:
            shift = shift * (limit / norm)
        box = self.last.box + np.array([shift[0], shift[1], shift[0], shift[1]], dtype=np.float32)
        kp = self.last.keypoints.copy()
        kp[:, :2] += shift.astype(np.float32)
        return box, kp


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0], dtype=np.float64)


def keypoint_distance(a: np.ndarray, b: np.ndarray, scale: float, min_confidence: float = 0.3) -> float:
    """Median distance over the body keypoints both see (confidence >= ``min_confidence``; all body keypoints
    when fewer than 3 qualify), divided by ``scale``; ``inf`` without any common keypoint."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    idx = np.array(BODY_KEYPOINTS)
    fin = np.isfinite(a[idx, :2]).all(axis=1) & np.isfinite(b[idx, :2]).all(axis=1)
    conf = fin & (np.nan_to_num(a[idx, 2]) >= min_confidence) & (np.nan_to_num(b[idx, 2]) >= min_confidence)
    use = conf if conf.sum() >= 3 else fin
    if not use.any():
        return float("inf")
    d = np.linalg.norm(a[idx[use], :2] - b[idx[use], :2], axis=1)
    return float(np.median(d) / max(scale, 1e-6))


def _match_cost(tr: _Track, det: PersonDetection, frame: int, cfg: TrackerConfig) -> float:
    box, kp = tr.predicted(frame)
    iou = box_iou(box, det.box)
    kd = keypoint_distance(kp, det.keypoints, body_scale(tr.last.keypoints), cfg.min_keypoint_confidence)
    if iou <= 0.0 and not kd < 1.0:
        return np.inf
    terms = [(cfg.iou_weight, 1.0 - iou), (cfg.keypoint_weight, min(kd / cfg.keypoint_norm, 1.0))]
    app = appearance_distance(tr.appearance, det.appearance)
    if app is not None and cfg.appearance_weight > 0:
        terms.append((cfg.appearance_weight, app))
    total = sum(w for w, _ in terms)
    cost = sum(w * c for w, c in terms) / total
    return cost + cfg.gap_penalty * (frame - tr.last_frame - 1)


def _reentry_cost(tr: _Track, det: PersonDetection) -> float:
    """Appearance and body proportions; ``inf`` when neither can be compared."""
    terms = []
    app = appearance_distance(tr.appearance, det.appearance)
    if app is not None:
        terms.append((0.7, app))
    sig = proportion_signature(det.world)
    if tr.signature is not None and sig is not None:
        # Mean relative difference of the bone ratios: 0.15 (15 %) costs the full weight.
        rel = np.abs(sig - tr.signature) / np.maximum(tr.signature, 1e-6)
        terms.append((0.3, min(float(rel.mean()) / 0.15, 1.0)))
    if not terms:
        return np.inf
    return sum(w * c for w, c in terms) / sum(w for w, _ in terms)


def track(detections_per_frame: Sequence[Sequence[PersonDetection]], config: TrackerConfig | None = None,
          fps: float = 30.0, image_size: tuple[int, int] = (0, 0), **overrides) -> Tracks:
    """Link per-frame detections into tracks (see the module docstring). ``overrides`` set ``TrackerConfig``
    fields, e.g. ``track(dets, max_gap=5)``. Track ids are 0, 1, ... in order of first appearance."""
    cfg = config or TrackerConfig()
    if overrides:
        cfg = TrackerConfig(**{**cfg.__dict__, **overrides})
    tracks: list[_Track] = []
    for f, dets in enumerate(detections_per_frame):
        dets = [d for d in dets if d.score >= cfg.min_score and np.isfinite(d.box).all()]
        if not dets:
            continue
        unmatched = list(range(len(dets)))
        active = [t for t in tracks if f - t.last_frame <= cfg.max_gap]
        if active:
            cost = np.array([[_match_cost(t, d, f, cfg) for d in dets] for t in active])
            unmatched = _assign(cost, cfg.max_cost, active, dets, f, unmatched)
        if unmatched:
            lost = [t for t in tracks if cfg.max_gap < f - t.last_frame <= cfg.reentry_window]
            if lost:
                sub = [dets[j] for j in unmatched]
                cost = np.array([[_reentry_cost(t, d) for d in sub] for t in lost])
                left = _assign(cost, cfg.reentry_max_cost, lost, sub, f, list(range(len(sub))))
                unmatched = [unmatched[j] for j in left]
        for j in unmatched:
            t = _Track(len(tracks))
            t.add(f, dets[j])
            tracks.append(t)
    n_frames = len(detections_per_frame)
    tracks = [t for t in tracks if len(t.frames) >= cfg.min_track_length]
    n = len(tracks)
    kp = np.full((n, n_frames, NUM_KEYPOINTS, 3), np.nan, dtype=np.float32)
    kp[..., 2] = 0.0
    world = np.full((n, n_frames, NUM_KEYPOINTS, 3), np.nan, dtype=np.float32)
    boxes = np.full((n, n_frames, 4), np.nan, dtype=np.float32)
    scores = np.zeros((n, n_frames), dtype=np.float32)
    held = [dict(zip(t.frames, t.dets)) for t in tracks]
    if cfg.settle_margin > 0:
        held = settle_identities(held, n_frames, cfg.max_gap, cfg.settle_margin)
    for i, dets in enumerate(held):
        for f, d in dets.items():
            kp[i, f], world[i, f], boxes[i, f], scores[i, f] = d.keypoints, d.world, d.box, d.score
    tracks = Tracks(np.arange(n), kp, world, boxes, scores, fps, image_size,
                    meta={"tracker": {k: v for k, v in cfg.__dict__.items()}})
    return join_fragments(tracks, cfg.max_gap)


def _informative(det: PersonDetection) -> bool:
    return det.appearance is not None and float(np.asarray(det.appearance).sum()) > 0


def _clear_of_others(dets: list[PersonDetection], max_iou: float = 0.1) -> list[bool]:
    """Per detection of one frame: its box overlaps no other's (its colours are its own person's)."""
    return [all(box_iou(a.box, b.box) <= max_iou for j, b in enumerate(dets) if j != i) for i, a in enumerate(dets)]


def _appearance_models(held: list[dict[int, PersonDetection]], num_frames: int) -> list[np.ndarray | None]:
    """Each track's appearance: the median descriptor over the frames where it is seen clear of everyone else
    (all its frames where fewer than three are), None where it has no informative descriptor."""
    models = []
    per_frame = [[(i, d) for i, h in enumerate(held) if (d := h.get(t)) is not None] for t in range(num_frames)]
    clear = {}
    for entries in per_frame:
        for (i, d), ok in zip(entries, _clear_of_others([d for _, d in entries])):
            clear.setdefault(i, []).append((ok, d))
    for i in range(len(held)):
        own = [d.appearance for ok, d in clear.get(i, []) if _informative(d)]
        alone = [d.appearance for ok, d in clear.get(i, []) if ok and _informative(d)]
        use = alone if len(alone) >= 3 else own
        models.append(np.median(np.asarray(use, np.float64), axis=0) if use else None)
    return models


def settle_identities(held: list[dict[int, PersonDetection]], num_frames: int, max_gap: int, margin: float,
                      iterations: int = 2) -> list[dict[int, PersonDetection]]:
    """Each frame's detections given to the tracks whose clothes they show.

    Why: frame to frame, two people who overlap are told apart by where they are, which an overlap leaves
    open: the tracks then swap people for a few frames, and the pair's 3D follows the wrong person (on the
    synthesized validation split 7% of the person-frames, one sequence in three). Over the whole video each
    track's colours are its majority person's (``_appearance_models``); in each frame the detections are
    assigned to the tracks alive there (seen within ``max_gap`` frames) by the Hungarian method on the
    appearance distance, and the frame changes only where that lowers the summed distance by more than
    ``margin`` (the distance between two people's clothes is 0.56-0.94 on the synthesized renders, a
    person's own 0.08-0.22). ``held``: per track {frame: detection}; the models are recomputed after each
    pass."""
    held = [dict(h) for h in held]
    for _ in range(iterations):
        models = _appearance_models(held, num_frames)
        known = np.array([m is not None for m in models])
        seen = np.zeros((len(held), num_frames + 2 * max_gap), bool)
        for i, h in enumerate(held):
            seen[i, np.fromiter(h, int, len(h)) + max_gap] = True
        # Alive: seen within max_gap frames (a running window over the sightings).
        window = np.cumsum(np.pad(seen, ((0, 0), (1, 0))), axis=1)
        alive = (window[:, 2 * max_gap + 1:] - window[:, :num_frames]) > 0
        model_rows = np.stack([m if m is not None else np.zeros(2 * _APP_REGION) for m in models]) if models else None
        changed = 0
        for t in range(num_frames):
            owners = [i for i, h in enumerate(held) if t in h]
            if not owners:
                continue
            rows = sorted(set(owners) | set(np.flatnonzero(alive[:, t] & known).tolist()))
            if len(rows) < 2:
                continue
            dets = [held[i][t] for i in owners]
            cost = appearance_costs(model_rows[rows], [d.appearance for d in dets])
            now = sum(cost[rows.index(i), k] for k, i in enumerate(owners))
            r, c = linear_sum_assignment(cost)
            if now - cost[r, c].sum() <= margin:
                continue
            for i in owners:
                del held[i][t]
            for ri, k in zip(r, c):
                held[rows[ri]][t] = dets[k]
            changed += 1
        if not changed:
            break
    return held


def _nearest_present(present: np.ndarray) -> np.ndarray:
    """(T,) for every frame the nearest frame where ``present`` holds (ties: the earlier); -1 if none."""
    frames = np.flatnonzero(present)
    if len(frames) == 0:
        return np.full(len(present), -1)
    at = np.clip(np.searchsorted(frames, np.arange(len(present))), 1, max(len(frames) - 1, 1))
    before, after = frames[at - 1], frames[np.minimum(at, len(frames) - 1)]
    return np.where(np.abs(after - np.arange(len(present))) < np.abs(np.arange(len(present)) - before),
                    after, before)


def _handovers(boxes: np.ndarray, present: np.ndarray, a: int, b: int, max_gap: int) -> np.ndarray:
    """Box IoUs of track ``a`` in the frames where only it is seen with track ``b`` at ``b``'s nearest sighting
    (within ``max_gap`` frames): how one track's person continues as the other's."""
    only_a = present[a] & ~present[b]
    nearest = _nearest_present(present[b] & ~present[a])
    frames = np.flatnonzero(only_a & (nearest >= 0))
    frames = frames[np.abs(nearest[frames] - frames) <= max_gap]
    return np.array([box_iou(boxes[a, f], boxes[b, nearest[f]]) for f in frames])


def join_fragments(tracks: Tracks, max_gap: int = 10, min_iou: float = 0.5, max_shared: float = 0.02,
                   duplicate: float = 0.2) -> Tracks:
    """One track per person where the frame-to-frame matching split a person in two: tracks that are (nearly)
    never seen in the same frame as two people, and where one is seen the other is seen within ``max_gap``
    frames at the same place (median box IoU at least ``min_iou``), are joined (most hand-overs first; ids
    renumbered in order of first appearance).

    Why: on a long video of two people (the sample played back and forth, 1547 frames) one person came out as
    two ids taking turns frame by frame over 380 frames, and then as only the second: the pair took the second
    and its first 269 frames were missing, to be made up by the 3D stages. "Nearly never": a frame or two of
    a duplicate detection, at most ``max_shared`` of the shorter track's frames. A frame where both are seen
    with one upper body in one place (``pose.same_upper_body`` within ``duplicate``) is one person detected
    twice: it does not count as seen together, and its box IoU counts as a hand-over."""
    present = tracks.present
    n = tracks.num_tracks
    twice = {(a, b): present[a] & present[b] & _duplicate_frames(tracks.keypoints[a], tracks.keypoints[b], duplicate)
             for a in range(n) for b in range(a + 1, n)}

    def together(ga: list[int], gb: list[int]) -> bool:  # seen as two people more often than a duplicate's few
        shared = sum(int((present[a] & present[b] & ~twice[min(a, b), max(a, b)]).sum()) for a in ga for b in gb)
        size = min(present[ga].any(0).sum(), present[gb].any(0).sum())
        return shared > max(2, max_shared * size)
    candidates = []
    for a in range(n):
        for b in range(a + 1, n):
            if together([a], [b]):
                continue
            doubled = [box_iou(tracks.boxes[a, t], tracks.boxes[b, t]) for t in np.flatnonzero(twice[a, b])]
            ious = np.concatenate([_handovers(tracks.boxes, present, a, b, max_gap),
                                   _handovers(tracks.boxes, present, b, a, max_gap), doubled])
            if len(ious) and np.median(ious) >= min_iou:
                candidates.append((len(ious), a, b))
    group = list(range(n))  # union-find over the tracks

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    members = {i: [i] for i in range(n)}  # each group's tracks
    for _, a, b in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        ra, rb = root(a), root(b)
        if ra == rb or together(members[ra], members[rb]):
            continue
        ra, rb = min(ra, rb), max(ra, rb)
        group[rb] = ra
        members[ra] += members.pop(rb)
    roots = sorted({root(i) for i in range(n)})
    if len(roots) == n:
        return tracks
    return _joined(tracks, [[i for i in range(n) if root(i) == r] for r in roots])


def _duplicate_frames(a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """(T,) bool: frames where two tracks' keypoints (T, 33, 3) put one upper body in one place."""
    upper = list(UPPER_BODY_KEYPOINTS)
    both = np.isfinite(a[:, upper, :2]).all((1, 2)) & np.isfinite(b[:, upper, :2]).all((1, 2))
    out = np.zeros(len(a), bool)
    for t in np.flatnonzero(both):  # only where both are seen: long videos hold many short tracks
        out[t] = same_upper_body(a[t], b[t], threshold)
    return out


def _joined(tracks: Tracks, groups: list[list[int]]) -> Tracks:
    """One track per group of track indices: in every frame the best-scoring member seen there."""
    n, T = len(groups), tracks.num_frames
    out = [np.empty((n,) + a.shape[1:], a.dtype) for a in (tracks.keypoints, tracks.world, tracks.boxes,
                                                             tracks.scores, tracks.interpolated)]
    score = np.where(tracks.present, tracks.scores + 1.0, 0.0)  # seen beats unseen at any score
    for g, members in enumerate(groups):
        pick = np.asarray(members)[np.argmax(score[members], axis=0)]  # (T,) the member used per frame
        for o, a in zip(out, (tracks.keypoints, tracks.world, tracks.boxes, tracks.scores, tracks.interpolated)):
            o[g] = a[pick, np.arange(T)]
    meta = dict(tracks.meta, joined_fragments=[[int(tracks.ids[i]) for i in m] for m in groups if len(m) > 1])
    return Tracks(np.arange(n), *out[:4], tracks.fps, tracks.image_size, tracks.keypoint_names, out[4], meta)


def _assign(cost: np.ndarray, max_cost: float, tracks: list[_Track], dets: list[PersonDetection], frame: int,
            candidates: list[int]) -> list[int]:
    """Hungarian assignment; matched detections are added to their tracks; returns the unmatched indices."""
    finite = np.where(np.isfinite(cost), cost, 1e6)
    rows, cols = linear_sum_assignment(finite)
    taken = set()
    for r, c in zip(rows, cols):
        if cost[r, c] <= max_cost:
            tracks[r].add(frame, dets[c])
            taken.add(c)
    return [j for j in candidates if j not in taken]


# --------------------------------------------------------------------------------------------------------------
# The pair and its crop
# --------------------------------------------------------------------------------------------------------------


def pair_distances(tracks: Tracks) -> dict[tuple[int, int], tuple[float, int]]:
    """For every two tracks: (median over co-visible frames of the box-centre distance divided by the mean box
    height, number of co-visible frames). Pairs never in view together are left out."""
    present = np.isfinite(tracks.boxes).all(axis=-1)
    centres = np.stack([(tracks.boxes[..., 0] + tracks.boxes[..., 2]) / 2,
                        (tracks.boxes[..., 1] + tracks.boxes[..., 3]) / 2], axis=-1)
    heights = tracks.boxes[..., 3] - tracks.boxes[..., 1]
    out = {}
    for a in range(tracks.num_tracks):
        for b in range(a + 1, tracks.num_tracks):
            both = present[a] & present[b]
            if not both.any():
                continue
            d = np.linalg.norm(centres[a, both] - centres[b, both], axis=-1)
            h = 0.5 * (heights[a, both] + heights[b, both])
            out[(int(tracks.ids[a]), int(tracks.ids[b]))] = (float(np.median(d / np.maximum(h, 1.0))),
                                                             int(both.sum()))
    return out


# A partner must be in view together with the other person in at least this share of the video's frames: a
# stray detection in a frame or two beside one person is not a second person (issue 15: a 312-frame video of
# one tennis player became a "pair" with a detection seen in one frame, 25 m away).
MIN_COVISIBLE_SHARE = 0.1
# Box-centre distance over the mean box height beyond which two people are too far apart to interact
# (about 3 body heights: 5 m between two adults).
FAR_APART = 3.0


def select_closest_pair(tracks: Tracks, min_covisible_fraction: float = 0.5) -> tuple[int, int]:
    """The two track ids with the closest spatial proximity over the video (paper Sec. 1.1).

    Proximity: for each frame where both are in view, the distance between their box centres divided by their
    mean box height; the pair's value is the median over those frames. Dividing by the height makes the measure
    independent of how far from the camera a pair stands (two people 1 m apart far away are as close as two
    people 1 m apart near the camera), box centres exist whenever a person is detected at all (unlike any single
    keypoint), and the median ignores a few frames of bad detections. Only pairs in view together for at least
    ``min_covisible_fraction`` of the best co-visible count compete, so a passer-by seen briefly next to
    someone does not win. The two ids come back left person first (by mean box centre over the shared frames).

    Raises ``InputError`` when there are fewer than two people or no two are in view together in at least
    ``MIN_COVISIBLE_SHARE`` of the frames.
    """
    if tracks.num_tracks == 0:
        raise InputError("no person was found in the video; SocialMirror needs two interacting people in view")
    if tracks.num_tracks == 1:
        seen = int(tracks.present[0].sum())
        raise InputError(f"only one person found in the video (track {int(tracks.ids[0])}, {seen} of "
                         f"{tracks.num_frames} frames); SocialMirror needs two interacting people in view")
    dist = pair_distances(tracks)
    if not dist:
        raise InputError(f"{tracks.num_tracks} people were found but no two are ever in view at the same time; "
                         "SocialMirror needs two interacting people in view together")
    best_count = max(c for _, c in dist.values())
    if best_count < MIN_COVISIBLE_SHARE * tracks.num_frames:
        raise InputError(f"only one person is in view for most of the video: no two people are in view together "
                         f"in more than {best_count} of its {tracks.num_frames} frames (at least "
                         f"{MIN_COVISIBLE_SHARE:.0%} needed); SocialMirror needs two interacting people in view")
    eligible = {k: v for k, v in dist.items() if v[1] >= min_covisible_fraction * best_count}
    (a, b), _ = min(eligible.items(), key=lambda kv: (kv[1][0], -kv[1][1], kv[0]))
    ia, ib = tracks.index(a), tracks.index(b)
    both = tracks.present[ia] & tracks.present[ib]
    xa = np.mean(tracks.boxes[ia, both][:, [0, 2]])
    xb = np.mean(tracks.boxes[ib, both][:, [0, 2]])
    return (a, b) if xa <= xb else (b, a)


@dataclass(frozen=True)
class People:
    """Who is reconstructed: ``ids`` (track ids, left to right by mean box centre) and each one's
    ``partners`` (the track id of their closest partner, with whom the interaction models see them), and the
    ``closest`` pair of all."""

    ids: tuple[int, ...]
    partners: tuple[int, ...]
    closest: tuple[int, int]  # the closest pair of all (``select_closest_pair``)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """The pairs to reconstruct: each person with their partner, once, left person first; the closest pair
        first, then left to right."""
        order = {i: k for k, i in enumerate(self.ids)}
        pairs = {tuple(sorted((i, p), key=order.get)) for i, p in zip(self.ids, self.partners)}
        return sorted(pairs, key=lambda ab: (set(ab) != set(self.closest), order[ab[0]], order[ab[1]]))


def people_seen(tracks: Tracks) -> np.ndarray:
    """The track ids of people, not fragments: seen in at least a tenth of the frames (and three); a track seen
    less is a stray detection. Most seen first."""
    seen = tracks.present.sum(axis=1)
    order = np.argsort(-seen, kind="stable")
    return tracks.ids[order][seen[order] >= max(3, 0.1 * tracks.num_frames)]


def select_people(tracks: Tracks, max_people: int = 2) -> People:
    """Up to ``max_people`` people, each with their closest partner (``pair_distances``).

    Two: the closest pair (``select_closest_pair``). More: the closest pair, then every other person seen in
    at least a tenth of the frames (most seen first) who is in view together with one of those already chosen
    in at least ``MIN_COVISIBLE_SHARE`` of the frames; each person's partner is the chosen person nearest to
    them over the frames they share, among those in view with them that often (the closest pair are each
    other's partners: theirs is the smallest distance)."""
    first = select_closest_pair(tracks)
    if max_people <= 2:
        return People(first, first[::-1], first)
    dist = pair_distances(tracks)
    together = (lambda a, b: dist.get((a, b), dist.get((b, a), (np.inf, 0))))  # noqa: E731
    often = (lambda a, b: together(a, b)[1] >= MIN_COVISIBLE_SHARE * tracks.num_frames)  # noqa: E731
    chosen = list(first)
    for i in (int(i) for i in people_seen(tracks)):
        if len(chosen) >= max_people:
            break
        if i not in chosen and any(often(i, c) for c in chosen):
            chosen.append(i)
    if len(chosen) == 2:
        return People(first, first[::-1], first)
    # The closest pair may share fewer frames than the others need: they stay each other's candidates.
    partners = {i: min((together(i, c)[0], c) for c in chosen
                       if c != i and (often(i, c) or {i, c} == set(first)))[1] for i in chosen}
    x = {i: float(np.nanmean(tracks.boxes[tracks.index(i)][:, [0, 2]])) for i in chosen}
    ids = sorted(chosen, key=lambda i: (x[i], i))
    return People(tuple(ids), tuple(partners[i] for i in ids), first)


def pair_crop_boxes(tracks: Tracks, pair: Sequence[int], margin: float = 0.1, square: bool = True,
                    smooth: int = 0, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """(T, 4) float32 crop boxes (x0, y0, x1, y1) around both people of ``pair`` in every frame.

    The union of the two boxes (or the one in view), widened by ``margin`` of its larger side on each side,
    made square around its centre when ``square`` (an annotator's images are square-ish), moved inside the image
    and clipped to it (so a pair larger than the image gets a non-square crop). Frames where neither person is
    in view take the box interpolated between the nearest frames where one is. ``smooth`` > 1 averages the boxes
    over that many frames (a steadier crop for the annotator).
    """
    w_img, h_img = image_size or tracks.image_size
    if w_img <= 0 or h_img <= 0:
        raise ValueError("pair_crop_boxes needs the image size (tracks.image_size or image_size=)")
    idx = [tracks.index(i) for i in pair]
    b = tracks.boxes[idx].astype(np.float64)  # (2, T, 4)
    valid = np.isfinite(b).all(axis=-1)  # (2, T)
    lo = np.where(valid[..., None], b[..., :2], np.inf).min(axis=0)
    hi = np.where(valid[..., None], b[..., 2:], -np.inf).max(axis=0)
    union = np.concatenate([lo, hi], axis=-1)
    have = valid.any(axis=0)
    union[~have] = np.nan
    if not have.any():
        raise InputError("the selected pair is never in view; no crop can be made")
    t = np.arange(tracks.num_frames)
    for k in range(4):
        union[~have, k] = np.interp(t[~have], t[have], union[have, k])
    if smooth and smooth > 1:
        kernel = np.ones(int(smooth)) / int(smooth)
        pad = int(smooth) // 2
        padded = np.pad(union, ((pad, int(smooth) - 1 - pad), (0, 0)), mode="edge")
        union = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(4)], axis=1)
    cx, cy = (union[:, 0] + union[:, 2]) / 2, (union[:, 1] + union[:, 3]) / 2
    w, h = union[:, 2] - union[:, 0], union[:, 3] - union[:, 1]
    side = np.maximum(w, h)
    w = w + 2 * margin * side
    h = h + 2 * margin * side
    if square:
        w = h = np.maximum(w, h)
    w, h = np.minimum(w, w_img), np.minimum(h, h_img)
    x0 = np.clip(cx - w / 2, 0, w_img - w)
    y0 = np.clip(cy - h / 2, 0, h_img - h)
    return np.stack([x0, y0, x0 + w, y0 + h], axis=1).astype(np.float32)


def crop_frame(frame: np.ndarray, box: np.ndarray, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """The pixels of ``frame`` inside ``box`` (rounded outwards), resized to ``size`` ((w, h) or a side)."""
    h_img, w_img = frame.shape[:2]
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w_img, int(np.ceil(box[2]))), min(h_img, int(np.ceil(box[3])))
    crop = frame[y0:y1, x0:x1]
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)
