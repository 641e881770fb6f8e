"""``socialmirror live``: sources, settings, and a whole run against local MJPEG streams on 127.0.0.1 that the
tests start (each serves a bounded number of frames and stops by itself)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from socialmirror.config import ConfigError
from socialmirror.errors import InputError
from socialmirror.live import LiveSettings, parse_source, run_live
from socialmirror.models.bundle import default_bundle_path
from socialmirror.perception.pose import PoseDetector

torch.set_num_threads(1)
needs_weights = pytest.mark.skipif(not default_bundle_path().is_file(), reason="no shipped weights")


def test_sources_are_told_apart_and_a_missing_one_is_a_clear_error(tmp_path):
    assert parse_source("0") == (0, False)
    assert parse_source("rtsp://127.0.0.1:8554/cam") == ("rtsp://127.0.0.1:8554/cam", True)
    assert parse_source("http://127.0.0.1:8080/stream.mjpg")[1] is True
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    assert parse_source(str(clip)) == (str(clip), False)
    with pytest.raises(InputError, match="not found"):
        parse_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(InputError, match="no camera"):
        parse_source("/dev/video987")


def test_bad_settings_are_one_line_errors():
    for kw in ({"window": 1}, {"stride": 0}, {"stride": 17}, {"buffer_frames": 0}, {"max_frames": 0},
               {"stall_seconds": 0}, {"fit_iterations": -1}, {"statures": (1.8,)}, {"statures": (180, 0)}):
        with pytest.raises(ConfigError):
            LiveSettings(**kw)


def test_fewer_fit_iterations_change_only_the_fit_of_the_method():
    from socialmirror.inference.methods import method_config
    preset = method_config("socialmirror")
    assert LiveSettings().method_config() == preset
    fewer = LiveSettings(fit_iterations=40).method_config()
    assert fewer.fit.iterations == 40 and preset.fit.iterations == 150
    assert fewer.fit == type(preset.fit)(**{**preset.fit.__dict__, "iterations": 40})
    assert {k: v for k, v in fewer.__dict__.items() if k != "fit"} == \
        {k: v for k, v in preset.__dict__.items() if k != "fit"}


def _sample_jpegs(count: int) -> list[bytes]:
    """The embedded sample's first frames at half size, as JPEG (an MJPEG stream's payload)."""
    from socialmirror.render.demo_sample import SAMPLE_VIDEO
    frames = iio.imread(SAMPLE_VIDEO)[:count]
    return [cv2.imencode(".jpg", cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2BGR), (480, 270)))[1].tobytes()
            for f in frames]


class _MJPEG(BaseHTTPRequestHandler):
    """Each GET of the stream serves the next of ``server.sessions`` (a list of frame counts; "stall": one
    frame, then silence) at 30 fps; past them, 404."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        server = self.server
        with server.lock:
            session = server.sessions.pop(0) if server.sessions else None
            server.gets += 1
            server.opened_at.append(time.monotonic())
        if session is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        count = 1 if session == "stall" else session
        try:
            for _ in range(count):
                jpeg = server.jpegs[server.sent % len(server.jpegs)]
                server.sent += 1
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                 + jpeg + b"\r\n")
                self.wfile.flush()
                time.sleep(1 / 30)
            if session == "stall":
                time.sleep(6.0)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _serve(sessions: list) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MJPEG)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.sessions, server.gets, server.sent, server.opened_at = list(sessions), 0, 0, []
    server.jpegs = _sample_jpegs(45)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def dropped_stream_run():
    """One run over a stream that serves 24 frames, drops, serves 24 more on reconnection, then refuses."""
    server = _serve([24, 24])
    records: list[dict] = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
        summary = run_live(url, LiveSettings(method="closeint", reconnects=3, buffer_frames=4),
                           emit=records.append)
    finally:
        server.shutdown()
        server.server_close()
    return server, records, summary


@needs_weights
def test_a_stream_is_reconstructed_window_by_window(dropped_stream_run):
    server, records, summary = dropped_stream_run
    assert summary.windows == len(records) >= 1 and summary.ended == "end of stream"
    for record in records:
        joints = np.asarray(record["joints3d"])
        assert joints.shape == (16, 2, 24, 3) and np.isfinite(joints).all()
        assert (joints[..., 2] > 0).all()  # in front of the camera
        assert record["frames"] == sorted(record["frames"]) and len(set(record["frames"])) == 16
        json.dumps(record)  # a JSON line as written
    assert 0 < summary.p50_latency_s <= summary.p95_latency_s


@needs_weights
def test_every_frame_is_taken_or_counted_as_dropped_and_the_stream_is_reconnected(dropped_stream_run):
    server, records, summary = dropped_stream_run
    assert summary.frames + summary.dropped == server.sent == 48
    assert summary.reconnects == 3 and server.gets == 4  # one reconnection served, two refused


@needs_weights
def test_a_stalled_stream_ends_the_run_after_the_stall_time():
    server = _serve(["stall"])
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
        t0 = time.monotonic()
        summary = run_live(url, LiveSettings(method="closeint", reconnects=0, stall_seconds=1.0),
                           emit=lambda record: None)
        seconds = time.monotonic() - t0
    finally:
        server.shutdown()
        server.server_close()
    assert summary.ended == "stalled" and summary.frames == 1 and summary.windows == 0
    assert seconds < 5.0  # not the server's six seconds of silence


class _SlowToWarmDetector(PoseDetector):
    """A detector that takes a while to get ready (as MediaPipe's, about a second) and sees nobody."""

    warmed_at: list = []

    def warm_up(self):
        time.sleep(0.3)
        _SlowToWarmDetector.warmed_at.append(time.monotonic())

    def detect(self, frame_rgb):
        return []


def test_the_detectors_are_ready_before_the_source_is_opened():
    """A live source's frames come from the moment it is opened: frames that came while detectors were made
    were dropped, so every detector is warmed up first."""
    server = _serve([8])
    _SlowToWarmDetector.warmed_at = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
        summary = run_live(url, LiveSettings(method="closeint", reconnects=0, perception_workers=2),
                           emit=lambda record: None, models=object(), detector=_SlowToWarmDetector)
    finally:
        server.shutdown()
        server.server_close()
    assert len(_SlowToWarmDetector.warmed_at) == 2 and max(_SlowToWarmDetector.warmed_at) < server.opened_at[0]
    assert summary.frames + summary.dropped == 8 and summary.windows == 0


def test_the_local_page_serves_the_latest_record():
    """The live page (127.0.0.1) serves its HTML and the newest record, replaced as records come."""
    import urllib.request

    from socialmirror.live import LatestPage
    page = LatestPage(0)
    try:
        get = (lambda path: urllib.request.urlopen(page.url + path, timeout=5).read())  # noqa: E731
        assert b"<canvas" in get("") and json.loads(get("latest.json")) == {}
        for window in (0, 1):
            page.update({"window": window, "frames": [0, 1], "joints3d": [[[[0.0, 0.0, 3.0]] * 24] * 2],
                         "latency_s": 0.5})
        assert json.loads(get("latest.json"))["window"] == 1
    finally:
        page.close()


def test_the_people_keep_their_order_from_window_to_window():
    """Two people at u = 100 and 300 px; the next window (sharing frames 8-15) lists them the other way round:
    swapped back, so person 0 stays the one at u = 100. Without shared frames the window's own order stands."""
    from socialmirror.live import same_people_order

    def keypoints(frames, us):
        kp = np.zeros((len(frames), 2, 24, 3))
        for p, u in enumerate(us):
            kp[:, p, :, 0], kp[:, p, :, 1], kp[:, p, :, 2] = u, 200.0, 0.9
        return kp
    first = list(range(16))
    previous = (first, keypoints(first, (100, 300)))
    later = list(range(8, 24))
    assert same_people_order(previous, later, keypoints(later, (300, 100))) == (1, 0)
    assert same_people_order(previous, later, keypoints(later, (102, 298))) == (0, 1)
    assert same_people_order(previous, list(range(30, 46)), keypoints(later, (300, 100))) == (0, 1)
    assert same_people_order(None, later, keypoints(later, (300, 100))) == (0, 1)


def test_stated_heights_follow_each_person_into_the_windows_own_order():
    """Person 0 (as emitted) is 1.80 m, person 1 not known: in a window whose pair is listed the other way
    round (order (1, 0)), the window's person 1 gets 1.80."""
    from socialmirror.live import window_statures
    np.testing.assert_array_equal(window_statures((1.8, 0.0), (0, 1)), [1.8, np.nan])
    np.testing.assert_array_equal(window_statures((1.8, 0.0), (1, 0)), [np.nan, 1.8])
    assert window_statures((0.0, 0.0), (1, 0)) is None and window_statures(None, (0, 1)) is None
