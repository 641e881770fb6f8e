"""``socialmirror batch``: a folder of videos, one output folder each, a failure reported while the others
complete, and a second run served from each folder's stage cache (issue 14 item 5)."""
from __future__ import annotations

import json
import shutil

import imageio.v3 as iio
import numpy as np
import pytest

from socialmirror import cli
from socialmirror.batch import find_inputs, output_names
from socialmirror.models.bundle import default_bundle_path
from _sample_helpers import write_sample_frames


def test_inputs_are_videos_and_folders_of_frames_by_name(tmp_path):
    (tmp_path / "b.mp4").write_bytes(b"x")
    (tmp_path / "b.avi").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.mp4").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "a").mkdir()
    write_sample_frames(tmp_path / "a", 1)  # a folder of frames
    inputs = find_inputs(tmp_path)
    assert [p.name for p in inputs] == ["a", "b.avi", "b.mp4"]
    assert output_names(inputs) == ["a", "b.avi", "b.mp4"]  # a shared stem keeps the extension
    assert output_names([tmp_path / "a", tmp_path / "b.mp4"]) == ["a", "b"]


@pytest.mark.slow
@pytest.mark.skipif(not default_bundle_path().is_file(), reason="no shipped weights")
def test_batch_goes_on_past_a_failure_and_resumes_from_the_caches(tmp_path, capsys):
    videos = tmp_path / "in"
    videos.mkdir()
    (videos / "clipA").mkdir()
    write_sample_frames(videos / "clipA", 16)
    frames = [iio.imread(p) for p in sorted((videos / "clipA").iterdir())]
    iio.imwrite(videos / "clipB.mp4", np.stack(frames), fps=30, codec="libx264", macro_block_size=1)
    (videos / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    args = ["batch", str(videos), "-o", str(out), "--no-render", "--no-viewer", "--threads", "1"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "1 of 3 videos failed" in err and "broken.mp4" in err
    summary = json.loads((out / "batch_summary.json").read_text())
    status = {item["input"].rsplit("/", 1)[-1]: item for item in summary["items"]}
    assert status["broken.mp4"]["status"] == "failed" and "corrupt" in status["broken.mp4"]["message"]
    for name in ("clipA", "clipB"):
        assert status[f"{name}.mp4" if name == "clipB" else name]["status"] == "done"
        with np.load(out / name / "result.npz") as r:
            assert r["joints3d"].shape == (16, 2, 24, 3)
    # Run again: every stage of the finished videos comes from their caches.
    assert cli.main(args) == 1
    again = {i["input"].rsplit("/", 1)[-1]: i for i in json.loads((out / "batch_summary.json").read_text())["items"]}
    assert {"tracks", "estimate", "outputs"} <= set(again["clipA"]["reused"])
    manifest = json.loads((out / "clipA" / "manifest.json").read_text())  # the files are the first run's
    assert {f["written_by_run"] for f in manifest["files"].values()} != {manifest["run"]["id"]}
    shutil.rmtree(out / "clipA")  # a folder removed is made again
    assert cli.main(args) == 1 and (out / "clipA" / "result.npz").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not default_bundle_path().is_file(), reason="no shipped weights")
def test_batch_on_a_local_ray_gives_the_plain_run_s_results(tmp_path):
    """Issue 14 item 5: --ray runs each video as a Ray task (a local Ray here, started and stopped by the
    command) with the same results as the plain run."""
    pytest.importorskip("ray")
    videos = tmp_path / "in"
    for name in ("one", "two"):
        (videos / name).mkdir(parents=True)
        write_sample_frames(videos / name, 12)
    common = ["--no-render", "--no-viewer", "--threads", "1"]
    assert cli.main(["batch", str(videos), "-o", str(tmp_path / "plain"), *common]) == 0
    assert cli.main(["batch", str(videos), "-o", str(tmp_path / "ray"), "--ray", *common]) == 0
    for name in ("one", "two"):
        with np.load(tmp_path / "plain" / name / "result.npz") as a, np.load(tmp_path / "ray" / name / "result.npz") as b:
            assert np.array_equal(a["joints3d"], b["joints3d"])
    summary = json.loads((tmp_path / "ray" / "batch_summary.json").read_text())
    assert [i["status"] for i in summary["items"]] == ["done", "done"]
