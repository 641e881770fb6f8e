"""Perception checkpointed in chunks (issue 15 cases 2 and 11): an interrupted run resumes after the frames it
finished, detecting only the rest, with the tracks of an uninterrupted run."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from socialmirror.perception.pipeline import DetectionCheckpoint, detect_and_track
from socialmirror.perception.pose import PersonDetection
from socialmirror.pipeline.cache import Codec, StageCache
from _sample_helpers import write_sample_frames


def _detection(seed: int, appearance: bool) -> PersonDetection:
    rng = np.random.default_rng(seed)
    return PersonDetection(rng.random((33, 3)), rng.random((33, 3)), rng.random(4), float(rng.random()),
                           rng.random(8).astype(np.float32) if appearance else None, f"pass{seed}")


def test_checkpoint_chunks_read_back_what_was_written(tmp_path):
    frames = [[_detection(1, True), _detection(2, False)], [], [_detection(3, True)], [], [_detection(4, False)]]
    saved = DetectionCheckpoint(tmp_path, every=2)
    for people in frames:
        saved.add(people)
    saved.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames_0000000_0000002.npz", "frames_0000002_0000004.npz",
                                                          "frames_0000004_0000005.npz"]
    back = DetectionCheckpoint(tmp_path).load()
    assert [len(f) for f in back] == [len(f) for f in frames]
    for got_frame, want_frame in zip(back, frames):
        for got, want in zip(got_frame, want_frame):
            assert np.array_equal(got.keypoints, want.keypoints) and np.array_equal(got.box, want.box)
            assert got.score == pytest.approx(want.score) and got.source == want.source
            assert (got.appearance is None) == (want.appearance is None)
    (tmp_path / "frames_0000002_0000004.npz").unlink()  # a gap: only the chunks from frame 0 count
    assert len(DetectionCheckpoint(tmp_path).load()) == 2


class _Interrupting:
    """A detector that counts its frames and raises KeyboardInterrupt (Ctrl-C) at frame ``stop_at``."""

    def __init__(self, detector, stop_at: int | None = None):
        self.detector, self.stop_at, self.calls = detector, stop_at, 0

    def detect(self, frame):
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        self.calls += 1
        return self.detector.detect(frame)


@pytest.mark.slow
def test_an_interrupted_perception_resumes_where_it_stopped(tmp_path):
    from socialmirror.perception.pose import MediaPipePoseDetector
    (tmp_path / "frames").mkdir()
    video = write_sample_frames(tmp_path / "frames", 12)
    with MediaPipePoseDetector(num_poses=3) as mediapipe:
        whole = detect_and_track(video, detector=mediapipe, progress=False)
        first = _Interrupting(mediapipe, stop_at=7)
        with pytest.raises(KeyboardInterrupt):
            detect_and_track(video, detector=first, progress=False, checkpoint=DetectionCheckpoint(tmp_path / "ck", 3))
        second = _Interrupting(mediapipe)
        resumed = detect_and_track(video, detector=second, progress=False,
                                   checkpoint=DetectionCheckpoint(tmp_path / "ck", 3))
    assert second.calls == 12 - 7  # only the frames the interrupted run had not finished
    assert np.array_equal(resumed.ids, whole.ids)
    assert np.allclose(resumed.keypoints, whole.keypoints, equal_nan=True)
    # Two workers, each with its own MediaPipe detector: the very same detections.
    two = detect_and_track(video, detector=partial(MediaPipePoseDetector, num_poses=3), progress=False, workers=2)
    assert np.array_equal(two.ids, whole.ids)
    assert np.array_equal(two.keypoints, whole.keypoints, equal_nan=True)


def test_a_stage_s_work_folder_lives_until_its_record_is_stored(tmp_path):
    cache = StageCache(tmp_path)
    work = cache.work_dir("tracks", ["video", 3])
    (work / "frames_0000000_0000001.npz").write_bytes(b"x")
    assert cache.work_dir("tracks", ["video", 3]) == work and work.exists()  # the same key: kept
    other = cache.work_dir("tracks", ["another video", 3])
    assert not work.exists() and other.exists()  # another key's partial work is dropped
    codec = Codec(".txt", lambda r, p: p.write_text(r), lambda p: p.read_text())
    cache.fetch("tracks", ["another video", 3], lambda: "done", codec)
    assert not (tmp_path / "tracks.work").exists()
    assert StageCache(None).work_dir("tracks", []) is None
