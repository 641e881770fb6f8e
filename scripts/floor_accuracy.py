"""How well the floor estimate (geometry.ground) recovers the camera's pitch under the render protocol.

For each sequence of each data set, the same render and perception as ``socialmirror evaluate --observe render``
(same seeds, so the same cached videos with the same ``--render-cache``), then the pair stage's estimate of the
world's up against the rendering camera's: pitch in degrees, and the camera's roll
(the estimate takes it as zero); the error of a level camera (what ``--level-camera`` assumes) is the true
pitch itself.

    .venv/bin/python scripts/floor_accuracy.py --data npz:/tmp/sm_val --max-frames 60 --render-cache /tmp/rc_val
"""
from __future__ import annotations

import argparse
import math
import zlib

import numpy as np
import torch


def up_angles(up: np.ndarray) -> tuple[float, float]:
    """Pitch and roll (degrees) of a camera whose frame sees the world's up as ``up`` (geometry.ground)."""
    up = up / np.linalg.norm(up)
    return math.degrees(math.asin(-up[2])), math.degrees(math.atan2(up[0], -up[1]))


def main() -> None:
    from socialmirror.body import build_body_model
    from socialmirror.data.datasets import sequences_from_spec
    from socialmirror.data.formats.interchange import resample
    from socialmirror.evaluation import render_protocol as rp

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--max-frames", type=int, default=60)
    parser.add_argument("--max-sequences", type=int, default=0)
    parser.add_argument("--render-cache", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    body, settings, cache = build_body_model("anny"), rp.RenderSettings(), rp.RenderCache(args.render_cache)
    errors, level_errors = [], []
    print("sequence | pitch true / estimated | true roll (degrees)")
    for spec in args.data:
        for k, seq in enumerate(sequences_from_spec(spec, fps=None, seed=args.seed)[: args.max_sequences or None]):
            seq = rp.clip_sequence(seq, args.max_frames, 30.0)
            seq30 = seq if abs(seq.fps - 30.0) < 1e-6 else resample(seq, 30.0)
            rng = np.random.default_rng(args.seed * 100003 + k)  # evaluate's draws
            look = np.random.default_rng([args.seed, k, zlib.crc32((seq.name or str(k)).encode())])
            try:
                case = rp.prepare_case(seq30, body, rng, look, settings, cache, 30.0, with_vertices=False)
            except rp.SkippedSequence as exc:
                print(f"{seq.name}: skipped ({exc})")
                continue
            true_pitch, true_roll = up_angles(case.camera.R @ np.asarray(seq30.up, dtype=np.float64))
            pitch = up_angles(np.asarray(case.observation.up))[0]
            errors.append(abs(pitch - true_pitch))
            level_errors.append(abs(true_pitch))
            print(f"{seq.name} | {true_pitch:6.1f} / {pitch:6.1f} | {true_roll:5.1f}")
    if errors:
        print(f"pitch error (deg): estimate median {np.median(errors):.1f}, mean {np.mean(errors):.1f}; "
              f"a level camera median {np.median(level_errors):.1f}, mean {np.mean(level_errors):.1f} "
              f"({len(errors)} sequences)")


if __name__ == "__main__":
    main()
