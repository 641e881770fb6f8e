"""Finding the people MediaPipe's pose detector misses: face seeds, a pose landmarker on a given region, tiles.

MediaPipe's PoseLandmarker finds a person only when its BlazePose detector does, and that detector keys on a
frontal-ish face and a whole-enough body: a person turned away, standing close to the camera and cut off by
the frame edge, or small in a wide shot is often not found at all, even when the person's crop is given to it
alone. The landmark model itself copes with all three once it is told where the person is. This module gives
it that region from other evidence, all from models inside the ``mediapipe`` 0.10.21 wheel, loaded directly
(the graphs read the ``.tflite`` files from the installed package; nothing is built or downloaded):

* ``FaceSeeder``: faces as seeds, from MediaPipe's short-range face detector (Tasks ``FaceDetector``, faces
  near the camera) and its full-range one (the legacy face-detection graph: the Tasks graph only knows the
  short-range model's anchors). A face gives the body's region by human proportions (``face_to_region``).
* ``RegionPoseLandmarker``: MediaPipe's pose landmark model on a given region (its ``PoseLandmarkByRoiCpu``
  graph, the one its video tracking runs between detections), refined the way that tracking does: the
  model's two alignment points give the next region (hip centre, full-body radius, rotation).
* ``tile_boxes``: overlapping crops, so that a small person fills more of the detector's 224-pixel input.

``MediaPipePoseDetector(recall=True)`` (pose.py) uses them only on frames where its passes found fewer than
``num_poses`` people.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from socialmirror.body.keypoints import NUM_KEYPOINTS
from socialmirror.perception.native_log import native_stderr_logged

os.environ.setdefault("GLOG_minloglevel", "2")


def _mediapipe_root() -> Path:
    import mediapipe

    return Path(mediapipe.__file__).resolve().parent


@dataclass
class FaceSeed:
    """A face found in a frame: its box (x0, y0, x1, y1) in pixels, the detector's score and which detector."""

    box: np.ndarray
    score: float
    source: str

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


# Body proportions measured in face-box units of MediaPipe's face detectors (the box spans brows to chin):
# an upright adult's hip centre lies about 3.7 boxes below the box centre, and the square region MediaPipe's
# pose tracking gives the landmark model (2.5 times the radius of the circle around the body from the hips)
# is about 11 boxes wide. The landmark model corrects a region that is off by a quarter; the refinement
# (``RegionPoseLandmarker``) does the rest.
FACE_TO_HIPS = 3.7
FACE_TO_REGION = 11.0


def face_to_region(face: FaceSeed) -> tuple[float, float, float, float]:
    """The landmark model's region (centre x, centre y, side, rotation) for an upright person with this face."""
    cx, cy = face.centre
    return float(cx), float(cy + FACE_TO_HIPS * face.size), float(FACE_TO_REGION * face.size), 0.0


class FaceSeeder:
    """Faces in a frame from MediaPipe's short- and full-range face detectors, duplicates merged.

    Args:
        min_confidence: the detectors' score threshold (low: a seed only proposes a region; the landmark model
            decides whether a person is there).
        full_range: also run the full-range detector (faces up to about 5 m; costs about 5 ms a frame).
    """

    def __init__(self, min_confidence: float = 0.3, full_range: bool = True):
        import mediapipe as mp  # noqa: F401  (registers the calculators)
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        model = _mediapipe_root() / "modules" / "face_detection" / "face_detection_short_range.tflite"
        if not model.is_file():
            raise RuntimeError(f"MediaPipe face model missing from the installed wheel: {model}")
        with native_stderr_logged():
            self._short = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_path=str(model)), min_detection_confidence=float(min_confidence)))
            self._full = None
            if full_range:
                from mediapipe.python.solutions.face_detection import FaceDetection

                self._full = FaceDetection(model_selection=1, min_detection_confidence=float(min_confidence))

    def detect(self, frame_rgb: np.ndarray) -> list[FaceSeed]:
        import mediapipe as mp

        h, w = frame_rgb.shape[:2]
        frame_rgb = np.ascontiguousarray(frame_rgb)
        faces = []
        for d in self._short.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=frame_rgb)).detections:
            b = d.bounding_box
            faces.append(FaceSeed(np.array([b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height],
                                           np.float64), float(d.categories[0].score), "face-short"))
        if self._full is not None:
            for d in self._full.process(frame_rgb).detections or []:
                b = d.location_data.relative_bounding_box
                box = np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h])
                faces.append(FaceSeed(box, float(d.score[0]), "face-full"))
        faces.sort(key=lambda f: -f.score)
        kept: list[FaceSeed] = []
        for f in faces:  # the two detectors see the same near faces: keep the more confident box
            if all(np.linalg.norm(f.centre - k.centre) > 0.5 * max(f.size, k.size) for k in kept):
                kept.append(f)
        return kept

    def close(self) -> None:
        if self._short is not None:
            self._short.close()
            self._short = None
        if self._full is not None:
            self._full.close()
            self._full = None


_REGION_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
output_stream: "world_landmarks"
output_stream: "alignment"
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
  output_stream: "AUXILIARY_LANDMARKS:alignment"
  output_stream: "WORLD_LANDMARKS:world_landmarks"
}
"""


@dataclass
class RegionPose:
    """The landmark model's output on one region: (33, 3) pixel keypoints with visibility, (33, 3) metric
    world landmarks, and the region (centre x, centre y, side, rotation) its alignment points give next."""

    keypoints: np.ndarray
    world: np.ndarray
    next_region: tuple[float, float, float, float]


class RegionPoseLandmarker:
    """MediaPipe's full pose landmark model on a given square region of a frame (``PoseLandmarkByRoiCpu``).

    The graph returns nothing when the model's pose-presence score is below 0.5, so an empty region yields
    ``None``. ``refine`` iterations re-centre the region on the model's own alignment points (as MediaPipe's
    video tracking does from frame to frame), which corrects a rough first region.
    """

    def __init__(self):
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python.solution_base import PacketDataType, SolutionBase

        config = text_format.Parse(_REGION_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self._first_run = True
        with native_stderr_logged():
            self._graph = SolutionBase(graph_config=config,
                                       side_inputs={"model_complexity": 1, "enable_segmentation": False},
                                       outputs=["landmarks", "world_landmarks", "alignment"],
                                       stream_type_hints={"roi": PacketDataType.PROTO,
                                                          "image": PacketDataType.IMAGE_FRAME})

    def landmarks(self, frame_rgb: np.ndarray, region: tuple[float, float, float, float]) -> RegionPose | None:
        """One run on ``region`` = (centre x, centre y, side, rotation in radians), pixels."""
        from mediapipe.framework.formats import rect_pb2

        if self._graph is None:
            raise RuntimeError("landmarker is closed")
        h, w = frame_rgb.shape[:2]
        cx, cy, side, rotation = region
        roi = rect_pb2.NormalizedRect(x_center=cx / w, y_center=cy / h, width=side / w, height=side / h,
                                      rotation=rotation)
        packets = {"image": np.ascontiguousarray(frame_rgb), "roi": roi}
        if self._first_run:  # the graph's first run logs a native warning of its own (NORM_RECT)
            self._first_run = False
            with native_stderr_logged():
                out = self._graph.process(packets)
        else:
            out = self._graph.process(packets)
        if out.landmarks is None or out.world_landmarks is None or out.alignment is None:
            return None
        kp = np.array([[l.x * w, l.y * h, l.visibility] for l in out.landmarks.landmark][:NUM_KEYPOINTS],
                      dtype=np.float32)
        kp[:, 2] = kp[:, 2].clip(0.0, 1.0)
        world = np.array([[l.x, l.y, l.z] for l in out.world_landmarks.landmark][:NUM_KEYPOINTS],
                         dtype=np.float32)
        (hx, hy), (tx, ty) = [(l.x * w, l.y * h) for l in out.alignment.landmark[:2]]
        radius = math.hypot(tx - hx, ty - hy)
        # The square is 2 x 1.25 radii around the hips, turned so that the body's axis stands upright.
        return RegionPose(kp, world, (hx, hy, 2.5 * radius, upright_rotation((hx, hy), (tx, ty))))

    def refine(self, frame_rgb: np.ndarray, region: tuple[float, float, float, float],
               iterations: int = 2) -> RegionPose | None:
        """Run on ``region``, then ``iterations`` more times on the region the model's alignment points give;
        ``None`` as soon as the model sees no person."""
        pose = self.landmarks(frame_rgb, region)
        for _ in range(iterations):
            if pose is None:
                return None
            pose = self.landmarks(frame_rgb, pose.next_region)
        return pose

    def close(self) -> None:
        if getattr(self, "_graph", None) is not None:
            self._graph.close()
            self._graph = None


def upright_rotation(hips: tuple[float, float], towards_head: tuple[float, float]) -> float:
    """MediaPipe's rotation of a region (radians in [-pi, pi), image y pointing down) that turns the body's axis,
    from the hips towards the head, upright: 0 for a standing person, +-pi/2 for a lying one."""
    rotation = math.pi / 2 - math.atan2(-(towards_head[1] - hips[1]), towards_head[0] - hips[0])
    return (rotation + math.pi) % (2 * math.pi) - math.pi


def tile_boxes(width: int, height: int, grid: int = 2, overlap: float = 0.35) -> list[tuple[int, int, int, int]]:
    """``grid`` x ``grid`` overlapping crops (x0, y0, x1, y1) covering the frame; neighbours share ``overlap``
    of a crop's size, so a person on a seam is whole in one of them."""
    def spans(n: int) -> list[tuple[int, int]]:
        size = n / (grid - (grid - 1) * overlap)
        starts = [round(i * size * (1 - overlap)) for i in range(grid)]
        return [(s, min(n, round(s + size))) for s in starts]

    return [(x0, y0, x1, y1) for y0, y1 in spans(height) for x0, x1 in spans(width)]
