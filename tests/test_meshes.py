"""body.meshes.MeshFrames: a motion's meshes read like a (T, P, V, 3) array, skinned a chunk at a time, so that
the outputs of a long video never hold all its meshes (issue 15, case 2: memory grew 3 MB a frame)."""
from __future__ import annotations

import numpy as np
import pytest

from socialmirror.body.meshes import MeshFrames, as_mesh_frames


class CountingSkinner:
    """Skins frame t as a known array (t everywhere, person p offset by p) and records each call's size."""

    def __init__(self, people: int = 2, vertices: int = 5):
        self.people, self.vertices, self.calls = people, vertices, []

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        self.calls.append(len(frames))
        base = np.asarray(frames, np.float32)[:, None, None, None]
        person = np.arange(self.people, dtype=np.float32)[None, :, None, None] * 0.5
        return np.broadcast_to(base + person, (len(frames), self.people, self.vertices, 3)).copy()


def full_array(num_frames: int) -> np.ndarray:
    return CountingSkinner()(np.arange(num_frames))


def test_reads_like_the_full_array_and_skins_a_chunk_at_a_time():
    skin = CountingSkinner()
    meshes = MeshFrames(skin, 11, chunk=4)
    expected = full_array(11)
    assert meshes.shape == (11, 2, 5, 3) and len(meshes) == 11 and meshes.ndim == 4
    assert np.array_equal(np.stack([meshes[t] for t in range(11)]), expected)
    assert np.array_equal(meshes[-1], expected[-1])
    assert np.array_equal(meshes[[9, 0, 5]], expected[[9, 0, 5]])
    assert np.array_equal(np.asarray(meshes), expected)
    assert [s for s, _ in meshes.chunks()] == [0, 4, 8]
    assert max(skin.calls) <= 4  # never more than a chunk of frames in one skinning
    # Everything fits in the cache: a second reading skins nothing.
    skin.calls.clear()
    for t in range(11):
        meshes[t]
    assert skin.calls == [] and np.array_equal(meshes[[3, 7]], expected[[3, 7]]) and skin.calls == []
    with pytest.raises(IndexError):
        meshes[11]


def test_a_video_too_long_for_the_cache_holds_one_chunk_and_skins_each_once_per_reading():
    """The meshes do not fit in the cache: one chunk is kept, so a reading in frame order skins each chunk
    once, a second reading skins them again, and a sample skins only its frames."""
    skin = CountingSkinner()
    chunk_bytes = 4 * 2 * 5 * 3 * 4
    meshes = MeshFrames(skin, 11, chunk=4, cache_bytes=2 * chunk_bytes)
    expected = full_array(11)
    for reading in range(2):
        skin.calls.clear()
        assert np.array_equal(np.stack([meshes[t] for t in range(11)]), expected)
        assert skin.calls == ([4, 3] if reading == 0 else [4, 4, 3])  # frame 0's chunk was skinned when made
        assert sum(b.nbytes for b in meshes._blocks.values()) <= chunk_bytes
    skin.calls.clear()
    assert np.array_equal(meshes.sample(3), expected[[0, 5, 10]]) and skin.calls == [3]


def test_sample_spreads_over_the_sequence():
    meshes = MeshFrames(CountingSkinner(), 1000, chunk=16)
    sample = meshes.sample(200)
    assert sample.shape == (200, 2, 5, 3) and sample[0, 0, 0, 0] == 0 and sample[-1, 0, 0, 0] == 999
    assert MeshFrames(CountingSkinner(), 7).sample(200).shape[0] == 7


def test_as_mesh_frames_wraps_arrays_and_checks_their_shape():
    array = full_array(3).astype(np.float64)
    meshes = as_mesh_frames(array)
    assert meshes.dtype == np.float64 and np.array_equal(np.asarray(meshes), array)
    assert as_mesh_frames(meshes) is meshes
    with pytest.raises(ValueError, match="T, P, V, 3"):
        as_mesh_frames(array[0])


def test_every_kth_frame_reads_lazily():
    skin = CountingSkinner()
    meshes = MeshFrames(skin, 10, chunk=4)
    thinned = meshes.every(3)
    assert len(thinned) == 4 and np.array_equal(np.asarray(thinned), full_array(10)[::3])
    assert max(skin.calls) <= 4


def test_the_viewer_thins_only_long_videos():
    """Issue 15 case 2: viewer.html passed 60 MB near 1200 frames; longer videos show every k-th frame."""
    from socialmirror.pipeline.export import VIEWER_MAX_FRAMES, viewer_stride
    assert viewer_stride(91) == viewer_stride(VIEWER_MAX_FRAMES) == 1
    assert viewer_stride(VIEWER_MAX_FRAMES + 1) == 2 and viewer_stride(1547) == 2
    assert viewer_stride(18000) == 15 and 18000 / viewer_stride(18000) <= VIEWER_MAX_FRAMES
