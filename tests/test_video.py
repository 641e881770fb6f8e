"""Frame readers: video files (fps, rotation), folders (natural order), and the errors users see."""
from __future__ import annotations

import subprocess
import types

import cv2
import imageio.v2 as iio
import numpy as np
import pytest

from socialmirror.errors import InputError
from socialmirror.perception.video import natural_key, open_video


def _frame(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    """RGB frame whose brightness encodes the index, plus a white left quarter (shows rotation)."""
    f = np.full((h, w, 3), 20 * i + 10, dtype=np.uint8)
    f[:, : w // 4] = 255
    return f


def _write_mp4(path, n=6, fps=12.5, w=64, h=48):
    with iio.get_writer(path, fps=fps, codec="libx264", macro_block_size=16, ffmpeg_log_level="error",
                        quality=9) as writer:
        for i in range(n):
            writer.append_data(_frame(i, w, h))
    return path


def test_mp4_fps_size_count_and_frames(tmp_path):
    path = _write_mp4(tmp_path / "clip.mp4")
    with open_video(path) as reader:
        assert reader.fps == pytest.approx(12.5)
        assert reader.size == (64, 48)
        assert reader.num_frames == 6
        it = iter(reader)
        assert isinstance(it, types.GeneratorType)  # streamed, one frame at a time
        frames = list(it)
    assert [i for i, _ in frames] == list(range(6))
    for i, f in frames:
        assert f.dtype == np.uint8 and f.shape == (48, 64, 3)
        assert abs(float(f[:, 40:, :].mean()) - (20 * i + 10)) < 6  # lossy codec
        assert f[:, :10].mean() > 240


def test_fps_override_and_reiteration(tmp_path):
    path = _write_mp4(tmp_path / "clip.mp4", n=3)
    reader = open_video(path, fps=50)
    assert reader.fps == 50
    assert len(list(reader)) == 3
    assert len(list(reader)) == 3  # every iteration starts over
    with pytest.raises(InputError):
        open_video(path, fps=0)


def test_avi_written_by_opencv(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (64, 48))
    for i in range(4):
        writer.write(cv2.cvtColor(_frame(i), cv2.COLOR_RGB2BGR))
    writer.release()
    reader = open_video(path)
    assert reader.fps == pytest.approx(15.0)
    frames = [f for _, f in reader]
    assert len(frames) == 4
    assert frames[0][:, :10].mean() > 240  # RGB order: the white band is white in every channel


def test_rotation_metadata_is_honoured(tmp_path):
    import imageio_ffmpeg

    plain = _write_mp4(tmp_path / "plain.mp4", n=2, w=128, h=64)
    rotated = tmp_path / "rotated.mov"
    # A 90-degree (counter-clockwise) display matrix, as phones write it; stream copied, pixels untouched.
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation", "90",
           "-i", str(plain), "-c", "copy", str(rotated)]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        pytest.skip("this ffmpeg cannot write a display matrix")
    reader = open_video(rotated)
    assert reader.size == (64, 128)
    _, f = next(iter(reader))
    assert f.shape == (128, 64, 3)
    # The white left quarter of the stored frame is the bottom quarter once rotated 90 degrees CCW.
    assert f[-20:].mean() > 230 and f[:20].mean() < 150


def test_folder_natural_sort_and_default_fps(tmp_path):
    names = ["frame10.png", "frame2.png", "frame1.png", "frame3.jpg"]
    order = {"frame1.png": 0, "frame2.png": 1, "frame3.jpg": 2, "frame10.png": 3}
    for name in names:
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(_frame(order[name]), cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / ".hidden.png").write_bytes(b"")
    reader = open_video(tmp_path)
    assert reader.fps == 30.0 and reader.num_frames == 4 and reader.size == (64, 48)
    values = [float(f[:, 40:].mean()) for _, f in reader]
    assert values == sorted(values)  # frame1, frame2, frame3, frame10
    assert open_video(tmp_path, fps=24).fps == 24
    assert sorted(["b10", "b9", "a100", "a20"], key=natural_key) == ["a20", "a100", "b9", "b10"]


def test_single_image_reads_as_one_frame(tmp_path):
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), _frame(1))
    assert [i for i, _ in open_video(path)] == [0]


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty_file", "text_as_video", "empty_folder",
                                  "folder_without_images"])
def test_clear_errors(tmp_path, case):
    if case == "missing":
        path = tmp_path / "nope.mp4"
    elif case == "corrupt":
        path = tmp_path / "broken.mp4"
        good = _write_mp4(tmp_path / "good.mp4").read_bytes()
        path.write_bytes(good[:200] + bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8)))
    elif case == "empty_file":
        path = tmp_path / "empty.mp4"
        path.write_bytes(b"")
    elif case == "text_as_video":
        path = tmp_path / "notes.avi"
        path.write_text("hello, not a video\n" * 50)
    elif case == "empty_folder":
        path = tmp_path / "frames"
        path.mkdir()
    else:
        path = tmp_path / "frames"
        path.mkdir()
        (path / "readme.md").write_text("x")
    with pytest.raises(InputError) as info:
        reader = open_video(path)
        list(reader)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message and str(path.name) in message


def test_corrupt_frame_in_folder_and_size_mismatch(tmp_path):
    cv2.imwrite(str(tmp_path / "0001.png"), _frame(0))
    (tmp_path / "0002.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="0002.png"):
        list(open_video(tmp_path))
    (tmp_path / "0002.png").unlink()
    cv2.imwrite(str(tmp_path / "0003.png"), _frame(1, w=32, h=32))
    with pytest.raises(InputError, match="same size|share one size"):
        list(open_video(tmp_path))


def test_a_truncated_video_is_read_in_part_with_a_warning_naming_the_counts(tmp_path, caplog):
    """Issue 15 case 6: a file cut short (its header still announcing every frame) is read as far as it goes,
    and the user is told how many of the announced frames decoded, once however often it is read."""
    import logging
    rng = np.random.default_rng(0)
    path = tmp_path / "full.mp4"
    with iio.get_writer(path, fps=10, codec="libx264", macro_block_size=16, ffmpeg_log_level="error",
                        output_params=["-movflags", "+faststart"]) as writer:  # the header first, as phones write
        for _ in range(40):
            writer.append_data(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))  # noise: every frame is large
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING), open_video(cut) as reader:
        assert reader.num_frames == 40
        decoded = len(list(reader))
        list(reader)
    assert 0 < decoded < 36
    warnings = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1 and f"announces 40 frames but only {decoded} could be decoded" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING), open_video(path) as reader:
        assert len(list(reader)) == 40
    assert "truncated" not in caplog.text


def _person(angle_deg: float):
    """A detection whose trunk (hips to shoulders) points ``angle_deg`` from the image's up."""
    from socialmirror.body.keypoints import KEYPOINT_INDEX
    from socialmirror.perception.pose import PersonDetection
    kp = np.full((33, 3), np.nan)
    a = np.radians(angle_deg)
    up = np.array([np.sin(a), -np.cos(a)])  # image y points down
    side = np.array([up[1], -up[0]]) * 0.2
    for name, point in (("left_hip", side), ("right_hip", -side), ("left_shoulder", up + side),
                        ("right_shoulder", up - side)):
        kp[KEYPOINT_INDEX[name]] = [*(100 + 50 * point), 0.9]
    return PersonDetection(kp, np.full((33, 3), np.nan), np.zeros(4), 0.9)


def test_sideways_share_counts_trunks_far_from_upright():
    from socialmirror.perception.pipeline import sideways_share
    frames = [[_person(0), _person(30)], [_person(90)], [_person(180), _person(-10)], []]
    assert sideways_share(frames) == pytest.approx(2 / 5)
    assert sideways_share([[]]) == 0.0


def test_a_wrong_rotation_tag_is_named(tmp_path, caplog):
    """Issue 15 case 11: an upright video tagged as turned 90 degrees is decoded sideways (OpenCV honours the
    tag); perception says so and names the tag, instead of reconstructing sideways people silently."""
    import imageio_ffmpeg

    from socialmirror.perception.pipeline import detect_and_track
    from socialmirror.render.demo_sample import SAMPLE_VIDEO
    clip = tmp_path / "clip.mp4"
    frames = [f for _, f in zip(range(6), iio.get_reader(SAMPLE_VIDEO))]
    iio.mimwrite(clip, frames, fps=30, macro_block_size=1)
    tagged = tmp_path / "tagged.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation", "90",
                    "-i", str(clip), "-c", "copy", str(tagged)], check=True)
    with open_video(tagged) as reader:
        if reader.rotation == 0:
            pytest.skip("this OpenCV build does not read rotation tags")
        assert reader.size == (540, 960)  # turned by the tag
    with caplog.at_level("WARNING", logger="socialmirror.perception.pipeline"):
        detect_and_track(tagged, progress=False)
    assert any("rotation tag turned its frames" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="socialmirror.perception.pipeline"):
        detect_and_track(clip, progress=False)
    assert not caplog.records


def test_a_variable_frame_rate_is_resampled_by_timestamps_to_a_constant_rate(tmp_path, caplog):
    """Issue 15 case 11: frames 33 ms apart, then 67 ms apart (a phone's variable rate) are read at a constant
    30 fps, the slower stretch's frames each shown twice (nothing dropped), with one warning naming the spacing
    and what was done; reading from a later frame gives the same frames; a constant-rate video is untouched."""
    import logging

    import imageio_ffmpeg
    steady = tmp_path / "steady.mp4"
    iio.mimwrite(steady, [np.full((48, 64, 3), 10 + 12 * i, dtype=np.uint8) for i in range(20)], fps=30,
                 macro_block_size=1)
    variable = tmp_path / "variable.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(steady), "-vf",
                    "setpts='(N+if(gte(N,10),N-10,0))/30/TB'", "-fps_mode", "vfr", str(variable)], check=True)
    with open_video(steady) as reader:
        originals = [frame for _, frame in reader]
    source = (lambda frame: int(np.argmin([np.abs(frame.astype(int) - o).mean() for o in originals])))  # noqa: E731
    with caplog.at_level(logging.WARNING), open_video(variable) as reader:
        assert reader.fps == pytest.approx(30.0) and reader.num_frames == 29
        read = [(index, source(frame)) for index, frame in reader]
        later = [(index, source(frame)) for index, frame in reader.frames(12)]
    assert read == list(enumerate(list(range(10)) + [v for v in range(10, 19) for _ in (0, 1)] + [19]))
    assert later == read[12:]
    warnings = [r.getMessage() for r in caplog.records if "variable frame rate" in r.getMessage()]
    assert len(warnings) == 1 and "33 to 67 ms apart" in warnings[0] and "30.00 fps" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING), open_video(steady) as reader:
        assert reader.fps == 30.0 and [source(frame) for _, frame in reader] == list(range(20))
    assert "variable frame rate" not in caplog.text


def test_the_constant_rate_schedule_takes_the_nearest_frame_in_time():
    """Frames at 0, 10, 20, 40, 45, 50 ticks: the densest tenth is 5 ticks apart, so the grid is every 5 ticks
    and each grid time takes the nearest frame (the earlier one on a tie); evenly spaced frames need none."""
    from socialmirror.perception.video import constant_rate_schedule
    fps, schedule = constant_rate_schedule(np.array([0, 10, 20, 40, 45, 50]), 0.001)
    assert fps == pytest.approx(200.0)
    assert schedule.tolist() == [0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 5]
    assert constant_rate_schedule(np.arange(0, 100, 4), 0.01) is None
