"""`socialmirror evaluate` on any folder of interchange files: joint subsets, other frame rates and up axes,
sequences shorter and longer than a window; the JSON layout of the issue."""
import json

import numpy as np
import pytest

from socialmirror import cli
from socialmirror.data.formats.interchange import TwoPersonSequence, write_npz
from socialmirror.evaluation.evaluate import _Detection, score_sequence, to_markdown
from socialmirror.models.bundle import default_bundle_path

needs_weights = pytest.mark.skipif(not default_bundle_path().is_file(), reason="no shipped weights")


def test_windowed_scores_match_whole_sequence_metrics():
    from socialmirror import metrics
    rng = np.random.default_rng(0)
    gt = rng.normal(scale=0.3, size=(37, 2, 24, 3))
    gt[:, 1] += [0.9, 0, 0.1]
    pred = gt + rng.normal(scale=0.02, size=gt.shape)
    acc = score_sequence(pred, gt, None)
    means = acc.means()
    # Per-frame metrics count every frame once, so they equal the whole-sequence value.
    assert means["MPJPE"] == pytest.approx(metrics.mpjpe(pred, gt), abs=0.01)
    assert means["R-MPJPE"] == pytest.approx(metrics.r_mpjpe(pred, gt), abs=0.01)
    assert means["Int"] == pytest.approx(metrics.interaction_error(pred, gt), abs=0.01)


def test_the_error_where_both_people_were_found_counts_only_those_frames():
    """R-MPJPE over the frames where perception found both people: frames 10-19 have the second person 1 m
    off (a wrong person), and are left out of it; over the rest the prediction is exact, so it is 0, while
    R-MPJPE sees the wrong frames (each person 0.5 m off after the shared realignment: 500 mm on 10 of 37)."""
    from socialmirror.evaluation.evaluate import FOUND
    rng = np.random.default_rng(1)
    gt = rng.normal(scale=0.3, size=(37, 2, 24, 3))
    pred = gt.copy()
    pred[10:20, 1] += [1.0, 0.0, 0.0]
    found = np.ones(37, bool)
    found[10:20] = False
    means = score_sequence(pred, gt, None, found=found).means()
    assert means[FOUND] == pytest.approx(0.0, abs=1e-6)
    assert means["R-MPJPE"] == pytest.approx(500.0 * 10 / 37, rel=1e-4)
    assert FOUND not in score_sequence(pred, gt, None).means()


def _standing_pair(body, T, fps, up_z=False, names=None):
    import torch
    R = torch.eye(3).repeat(T, 2, 24, 1, 1)
    t = torch.linspace(0, 1, T)
    R[:, 0, 0] = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # facing +x
    R[:, 1, 0] = torch.tensor([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]])  # facing -x
    transl = torch.stack([torch.stack([0.2 * t, 0.9 + 0 * t, 0 * t], -1),
                          torch.stack([1.1 - 0.2 * t, 0.9 + 0 * t, 0 * t], -1)], 1)
    joints = body.joints(R, None, transl).numpy()
    up = np.array([0.0, 1.0, 0.0])
    if up_z:  # the same scene in a z-up world
        joints = joints[..., [0, 2, 1]] * np.array([1, -1, 1])
        up = np.array([0.0, 0.0, 1.0])
    from socialmirror.body.skeleton import SMPL24_NAMES
    names = names or SMPL24_NAMES
    idx = [SMPL24_NAMES.index(n) for n in names]
    return TwoPersonSequence(joints3d=joints[:, :, idx], joint_names=tuple(names), fps=fps, up=up,
                             action="walk_together")


@needs_weights
def test_evaluate_any_folder(tmp_path, anny_body, capsys):
    folder = tmp_path / "data"
    subset = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "neck",
              "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")
    write_npz(_standing_pair(anny_body, 10, 30.0), folder / "short.npz")  # shorter than a window
    seq = _standing_pair(anny_body, 50, 50.0, up_z=True, names=subset)  # 50 fps, z up, 15 joints
    seq.name = "long"
    write_npz(seq, folder / "long.npz")
    out = tmp_path / "out.json"
    rc = cli.main(["evaluate", "--data", f"npz:{folder}", "--json", str(out), "--markdown", str(tmp_path / "o.md"),
                   "--pen-stride", "20", "--threads", "1"])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert set(doc) == {"protocol", "results", "per_action"}
    res = doc["results"]["npz:data"]
    for method in ("independent", "closeint", "socialmirror"):
        assert {"MPJPE", "PA-MPJPE", "R-MPJPE", "G-MPJPE", "Int", "Pen", "Accel"} <= set(res[method])
        assert all(np.isfinite(v) for v in res[method].values())
    assert "improvement_over_closeint_percent" in res
    assert doc["per_action"]["npz:data"]["walk_together"]["socialmirror"]["MPJPE"] > 0
    assert doc["protocol"]["seed"] == 0 and "observations" in doc["protocol"]


@needs_weights
def test_method_adjustments_reach_every_method(tmp_path, anny_body):
    from socialmirror.config import load
    from socialmirror.evaluation.evaluate import EvaluateConfig, evaluate
    folder = tmp_path / "data"
    write_npz(_standing_pair(anny_body, 12, 30.0), folder / "pair.npz")
    base = evaluate([f"npz:{folder}"], EvaluateConfig(methods=("closeint",), pen_stride=50, progress=False))
    tuned = evaluate([f"npz:{folder}"], load(EvaluateConfig, None, ["method.sampling_steps=1",
                                                                  "methods=[closeint]", "pen_stride=50"]))
    assert base["protocol"]["method_changes"] == {} and tuned["protocol"]["method_changes"] == {"sampling_steps": 1}
    assert base["results"]["npz:data"]["closeint"] != tuned["results"]["npz:data"]["closeint"]


def test_detection_shares_and_their_markdown_line():
    """Of 10 person-frames, 8 detected and 6 with the right box: 20% missed, 20% someone else's box."""
    record = _Detection(frames=10.0, hits=8.0, correct=6.0).record(sequences=1, skipped=0)
    assert record["detection_rate"] == 0.8 and record["correct_detection_rate"] == 0.6
    assert record["missed_share"] == pytest.approx(0.2) and record["wrong_person_share"] == pytest.approx(0.2)
    doc = {"results": {"d": {"socialmirror": {"MPJPE": 1.0}}}, "detection": {"d": record}}
    assert "Person-frames missed: 20.0%; detected as someone else (box IoU < 0.5): 20.0%." in to_markdown(doc)
