"""`socialmirror evaluate --observe render`: a sequence rendered to a video and reconstructed by the whole
pipeline; the matcher that puts the pipeline's people in the ground truth's order; the render cache."""
import json

import numpy as np
import pytest

from socialmirror.evaluation.render_protocol import (RenderCache, RenderSettings, clip_sequence,
                                                     match_people, sample_appearance)
from socialmirror.geometry.camera import box_iou
from socialmirror.models.bundle import default_bundle_path

needs_weights = pytest.mark.skipif(not default_bundle_path().is_file(), reason="no shipped weights")


def _person_keypoints(x0, x1, y0, y1, T=5, n=24):
    """(T, n, 3) keypoints spread over the box, all given."""
    rng = np.random.default_rng(int(x0))
    uv = np.stack([rng.uniform(x0, x1, (T, n)), rng.uniform(y0, y1, (T, n))], -1)
    uv[:, 0] = [x0, y0]
    uv[:, 1] = [x1, y1]
    return np.concatenate([uv, np.ones((T, n, 1))], -1)


def test_matching_puts_swapped_people_back_in_ground_truth_order():
    left, right = _person_keypoints(10, 60, 20, 200), _person_keypoints(80, 140, 30, 210)
    gt_uv = np.stack([left[..., :2], right[..., :2]], 1)  # ground truth: left person first
    valid = np.ones(gt_uv.shape[:3], dtype=bool)
    pred = np.stack([right, left], 1).copy()  # the pipeline lists them the other way round
    pred[..., :2] += 3.0  # and a few pixels off
    pred[2, 0, :, 2] = 0.0  # a frame where the pipeline missed one of them
    m = match_people(pred, gt_uv, valid)
    assert m.order == [1, 0]
    assert m.iou[0, 1] > 0.8 and m.iou[0, 0] == 0.0
    assert m.detected.shape == (5, 2) and not m.detected[2, 1] and m.detected[2, 0]
    assert m.frame_iou[2, 1] == 0.0  # the missed frame overlaps nothing
    same = match_people(np.stack([left, right], 1), gt_uv, valid)
    assert same.order == [0, 1]


def test_box_iou_and_missing_boxes():
    a = np.array([0.0, 0, 10, 10])
    assert box_iou(a, a) == pytest.approx(1.0)
    assert box_iou(a, np.array([5.0, 0, 15, 10])) == pytest.approx(1 / 3)
    assert box_iou(a, np.full(4, np.nan)) == 0.0


def test_clip_keeps_the_middle_and_the_body_parameters(anny_body):
    from socialmirror.data.synth import InteractionSynthesizer, SynthConfig
    seq = InteractionSynthesizer(anny_body, SynthConfig(types=("handshake",), duration=(2.0, 2.0))).sample(
        np.random.default_rng(0))
    clip = clip_sequence(seq, 20)
    assert clip.num_frames == 20
    s = (seq.num_frames - 20) // 2
    np.testing.assert_array_equal(clip.joints3d, seq.joints3d[s:s + 20])
    assert np.asarray(clip.meta["body_params"]["rotmats"]).shape[0] == 20
    assert all(0 <= t0 <= t1 < 20 for _, _, t0, t1 in clip.contacts)
    assert clip_sequence(seq, 10_000) is seq


def test_appearance_is_seeded():
    a, b = sample_appearance(np.random.default_rng(5)), sample_appearance(np.random.default_rng(5))
    assert a == b and a != sample_appearance(np.random.default_rng(6))
    assert a["outfits"][0]["shirt"] != a["outfits"][1]["shirt"]


@pytest.mark.slow
@needs_weights
def test_render_protocol_end_to_end_and_cache(tmp_path, anny_body):
    """A short synthesized sequence rendered small, reconstructed by the whole pipeline, scored; the second run
    reads the video from the cache and gives the same numbers."""
    from socialmirror import cli
    from socialmirror.data.formats.interchange import write_npz
    from socialmirror.data.synth import InteractionSynthesizer, SynthConfig
    # Upright people (no posture): at 320 pixels a leaning front person can hide the other from MediaPipe,
    # and this test is about the protocol, not about detection under occlusion.
    config = SynthConfig(types=("handshake",), duration=(1.0, 1.0), posture_spread=0.0)
    seq = InteractionSynthesizer(anny_body, config).sample(np.random.default_rng(1))
    seq.name = "tiny"
    write_npz(seq, tmp_path / "data" / "tiny.npz")
    cache = tmp_path / "renders"
    args = ["evaluate", "--data", f"npz:{tmp_path / 'data'}", "--observe", "render", "--max-frames", "6",
            "--methods", "closeint", "socialmirror-nofit", "socialmirror", "--render-cache", str(cache),
            "--pen-stride", "6", "--threads", "1", "--set", "render.long_side=320",
            "--set", "method.sampling_steps=2"]
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    assert cli.main(args + ["--json", str(out1)]) == 0
    doc = json.loads(out1.read_text())
    res = doc["results"]["npz:data"]
    for method in ("closeint", "socialmirror-nofit", "socialmirror"):
        assert {"MPJPE", "PA-MPJPE", "R-MPJPE", "G-MPJPE", "Int", "Pen", "Accel", "VPE"} <= set(res[method])
        assert all(np.isfinite(v) for v in res[method].values())
    protocol = doc["protocol"]
    assert protocol["observe"] == "render" and protocol["max_frames"] == 6 and protocol["seed"] == 0
    assert protocol["renderer"]["long_side"] == 320 and protocol["videos_rendered"] == 1
    record = doc["sequences"]["npz:data"][0]
    assert record["frames"] == 6 and record["bodies"] == "sequence" and sorted(record["order"]) == [0, 1]
    assert record["camera"]["image_size"][0] % 2 == 0 and max(record["camera"]["image_size"]) == 320
    assert set(record["persons"]) == {"closeint", "socialmirror-nofit", "socialmirror"}
    assert all(len(v) == 2 and all(x > 0 for x in v) for v in record["persons"]["socialmirror"].values())
    for method in ("closeint", "socialmirror"):  # one sequence: its own scores are the data set's
        assert record["metrics"][method]["R-MPJPE"] == pytest.approx(res[method]["R-MPJPE"], abs=0.05)
    detection = doc["detection"]["npz:data"]
    assert 0.0 <= detection["detection_rate"] <= 1.0
    assert detection["missed_share"] + detection["wrong_person_share"] + detection["correct_detection_rate"] \
        == pytest.approx(1.0, abs=1e-3)
    videos = list(cache.glob("*/video.mp4"))
    assert len(videos) == 1
    stamp = videos[0].stat().st_mtime_ns

    assert cli.main(args + ["--json", str(out2)]) == 0
    again = json.loads(out2.read_text())
    assert again["protocol"]["videos_rendered"] == 0 and again["protocol"]["videos_from_cache"] == 1
    assert videos[0].stat().st_mtime_ns == stamp
    assert again["sequences"]["npz:data"][0]["render_key"] == record["render_key"]
    assert again["results"]["npz:data"]["closeint"] == res["closeint"]

    # The same video with the pipeline assuming a focal length 30% too long: no new render, and the 3D differs.
    out3 = tmp_path / "c.json"
    assert cli.main(args + ["--set", "render.assumed_focal_scale=1.3", "--json", str(out3)]) == 0
    off = json.loads(out3.read_text())
    assert off["protocol"]["renderer"]["assumed_focal_scale"] == 1.3 and off["protocol"]["videos_rendered"] == 0
    assert off["results"]["npz:data"]["closeint"]["MPJPE"] != res["closeint"]["MPJPE"]


def test_render_cache_ignores_incomplete_entries(tmp_path):
    cache = RenderCache(tmp_path)
    (tmp_path / "k1").mkdir()
    (tmp_path / "k1" / "video.mp4").write_bytes(b"x")
    assert cache.lookup("k1") is None  # no record: an interrupted render
    cache.store("k1", {"frames": 3})
    assert cache.lookup("k1")["frames"] == 3
    (tmp_path / "k1" / "video.mp4").unlink()
    assert cache.lookup("k1") is None


def test_render_settings_are_checked():
    from socialmirror.config import ConfigError
    with pytest.raises(ConfigError):
        RenderSettings(long_side=10)
    with pytest.raises(ConfigError):
        RenderSettings(assumed_focal_scale=0.0)
