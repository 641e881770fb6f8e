"""A motion's meshes, (T, P, V, 3), skinned a chunk of frames at a time as they are read.

The skinned meshes of a whole video do not fit in memory for long inputs: anny has about 14,000 vertices, so
two people cost 330 KB a frame as float32, and skinning all frames in one batch holds several times that in
intermediates (measured: 2.0 GB peak for 455 frames with rendering and the viewer off, before this). The
outputs read the meshes in frame order (the render, the viewer, the OBJ files), so ``MeshFrames`` skins
``chunk`` consecutive frames when one of them is first read and keeps that chunk only: memory is bounded by a
chunk, whatever the length. A video whose meshes all fit in ``cache_bytes`` (128 MB: about 390 frames of two
anny bodies) keeps every chunk it skinned instead, since the outputs read the meshes several times. ``np.asarray(meshes)`` gives the whole array where a caller truly needs it
(result.npz with ``--meshes``).
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

# Skins the frames of an index array: (n,) int -> (n, P, V, 3), camera frame.
Skinner = Callable[[np.ndarray], np.ndarray]


class MeshFrames:
    """Indexable like a (T, P, V, 3) array (the skinner's dtype): ``[t]`` one frame, ``[index array]`` those frames
    stacked; ``len``, ``shape``, ``ndim``; ``chunks()`` yields (first frame, block) in order.

    Where all the frames fit in ``cache_bytes``, every skinned chunk is kept: the outputs read a short video's
    meshes several times (render.mp4, viewer.html, the ground planes' samples; on the 91-frame sample they were
    skinned four times over before). Otherwise only the last chunk read is kept."""

    ndim = 4

    def __init__(self, skin: Skinner, num_frames: int, chunk: int = 32, cache_bytes: int = 128 << 20):
        if num_frames <= 0:
            raise ValueError("no frames to skin")
        self._skin = skin
        self._chunk = max(1, int(chunk))
        self._num_frames = int(num_frames)
        self._cache_bytes = int(cache_bytes)
        self._blocks: dict[int, np.ndarray] = {}  # skinned chunks by first frame
        self._fits = False
        first = self._block(0)
        self.shape = (self._num_frames,) + tuple(first.shape[1:])
        self.dtype = first.dtype
        # Every frame fits in the cache: all chunks are kept, and any read goes through them (each skinned once).
        self._fits = first[:1].nbytes * self._num_frames <= self._cache_bytes

    def __len__(self) -> int:
        return self._num_frames

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            t = int(index) + (self._num_frames if index < 0 else 0)
            if not 0 <= t < self._num_frames:
                raise IndexError(f"frame {index} of {self._num_frames}")
            return self._block(t - t % self._chunk)[t % self._chunk]
        frames = np.arange(self._num_frames)[index]  # slices, index arrays and masks, checked by numpy
        if self._fits:
            return np.stack([self[int(t)] for t in frames]) if len(frames) else \
                np.zeros((0,) + self.shape[1:], self.dtype)
        # A long video: only the frames asked for are skinned (a sample of 200 frames need not skin them all).
        parts = [self._skin(frames[s:s + self._chunk]) for s in range(0, len(frames), self._chunk)]
        return np.concatenate(parts) if parts else np.zeros((0,) + self.shape[1:], self.dtype)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        for start, block in self.chunks():
            out[start:start + len(block)] = block
        return out if dtype is None else out.astype(dtype)

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self._num_frames, self._chunk):
            yield start, self._block(start)

    def every(self, step: int) -> "MeshFrames":
        """Every ``step``-th frame (0, step, 2 step, ...), read the same lazy way."""
        step = max(1, int(step))
        skin, chunk = self._skin, self._chunk
        return MeshFrames(lambda frames: skin(np.asarray(frames) * step), -(-self._num_frames // step), chunk,
                          self._cache_bytes)

    def sample(self, count: int = 200) -> np.ndarray:
        """At most ``count`` frames spread evenly over the sequence (for placing cameras and ground planes)."""
        return self[np.linspace(0, self._num_frames - 1, min(self._num_frames, count)).round().astype(int)]

    def _block(self, start: int) -> np.ndarray:
        """The skinned chunk that starts at frame ``start``, from the cache or skinned now."""
        if start not in self._blocks:
            if not self._fits:  # a long video: the chunk read last is the one kept
                self._blocks.clear()
            frames = np.arange(start, min(start + self._chunk, self._num_frames))
            self._blocks[start] = np.asarray(self._skin(frames))
        return self._blocks[start]


def as_mesh_frames(vertices) -> MeshFrames:
    """``vertices`` as ``MeshFrames``: itself, or a (T, P, V, 3) array (or tensor) read by frame."""
    if isinstance(vertices, MeshFrames):
        return vertices
    array = np.asarray(vertices.detach().cpu() if hasattr(vertices, "detach") else vertices)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"vertices must be (T, P, V, 3), got {array.shape}")
    return MeshFrames(lambda frames: array[frames], len(array), chunk=max(1, len(array)))


__all__ = ["MeshFrames", "Skinner", "as_mesh_frames"]
