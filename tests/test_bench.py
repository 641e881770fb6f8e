"""``socialmirror bench`` reports every stage, the 3D stages together and the single-pass landmarker floor of
the same frames, as one run's ratios (issue 13 item 4)."""
from __future__ import annotations

import json

import pytest

from socialmirror import cli
from socialmirror.models.bundle import default_bundle_path
from _sample_helpers import write_sample_frames


@pytest.mark.slow
@pytest.mark.skipif(not default_bundle_path().is_file(), reason="no shipped weights")
def test_bench_json_has_the_floor_and_the_ratios(tmp_path, capsys):
    (tmp_path / "frames").mkdir()
    frames = write_sample_frames(tmp_path / "frames", 10)
    out = tmp_path / "bench.json"
    assert cli.main(["bench", str(frames), "--threads", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["frames"] == 10 and report["image_size"] == [960, 540]
    for key in ("end_to_end_fps", "floor_fps", "fps_3d", "ratio_to_floor"):
        assert report[key] > 0, key
    assert report["ratio_to_floor"] == pytest.approx(report["end_to_end_fps"] / report["floor_fps"], rel=0.01)
    assert {"tracks", "draft", "estimate", "outputs"} <= set(report["stages"])
    assert all(set(v) == {"seconds", "fps"} for v in report["stages"].values())
    assert report["machine"]["torch_threads"] == 1
    assert "floor: one plain landmarker call a frame" in capsys.readouterr().out
