"""``socialmirror live SOURCE``: the two people reconstructed while they are still there.

SOURCE is a camera (an index such as ``0``, or ``/dev/videoN``), a network stream (``rtsp://``, or an HTTP(S)
MJPEG or H.264 stream) or a video file (played as fast as it decodes, or at its own frame rate with
``realtime``). Frames are read by a thread of their own into a small buffer (``LiveSettings.buffer_frames``):
when perception falls behind, the oldest waiting frame is dropped and counted, so the latency stays bounded
instead of growing with the stream. Every frame taken is detected (MediaPipe, as ``reconstruct``, by
``perception_workers`` threads with a detector each, frames kept in order); each time
``stride`` new frames have been detected and the previous window is done, the last ``window`` frames are
tracked, their closest pair chosen and reconstructed by the 3D stages (the method's full pipeline, the offline
annotator for its semantics) in a third thread, while perception goes on, and one JSON record is emitted
(``window_record``). A frame's latency is the time from its arrival to the record that
first holds it. The run ends at the stream's end, after ``max_frames`` frames, when no frame has come for
``stall_seconds`` (a network stream is first reopened ``reconnects`` times), or on Ctrl-C; the summary
(``LiveSummary``) counts frames, drops and windows and gives the latency's p50 and p95.

Each window is reconstructed on its own; its two people are put in the order of the previous record's by
their 2D keypoints on the frames both windows hold (``same_people_order``), so person 0 stays person 0 while
the windows overlap.
"""
from __future__ import annotations

import collections
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from socialmirror.config import ConfigError, check_statures
from socialmirror.errors import InputError

log = logging.getLogger(__name__)

_STREAM = re.compile(r"^(rtsp|rtmp|https?)://", re.IGNORECASE)


@dataclass(frozen=True)
class LiveSettings:
    window: int = 16  # frames reconstructed together (the networks' clip length)
    stride: int = 8  # new frames between two records
    buffer_frames: int = 4  # frames waiting for perception; when full the oldest is dropped
    realtime: bool = False  # a file played at its own frame rate (cameras and streams always are)
    max_frames: int | None = None  # stop after this many frames taken
    stall_seconds: float = 5.0  # no frame for this long: the stream has stalled
    reconnects: int = 3  # a network stream that ends or stalls is reopened this many times
    method: str = "socialmirror"
    # Iterations of the fit to the evidence per window (None: the method's, 150): the fit is most of a window's
    # time, and fewer iterations trade accuracy for latency (README, "Speed").
    fit_iterations: int | None = None
    seed: int = 0
    # Frames detected at once, each by its own detector; they share the cores with the 3D stages' thread.
    perception_workers: int = 2
    # The two people's standing heights in metres, person 0 first (the first window's left person), 0 for not
    # known: as `reconstruct --statures`, each window's fit gives them bodies of that height.
    statures: tuple[float, float] | None = None

    def __post_init__(self):
        if not 2 <= self.window:
            raise ConfigError(f"live window: at least 2 frames, got {self.window}")
        if not 1 <= self.stride <= self.window:
            raise ConfigError(f"live stride: between 1 and the window ({self.window}), got {self.stride}")
        if self.buffer_frames < 1:
            raise ConfigError(f"live buffer: at least 1 frame, got {self.buffer_frames}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"live max_frames: at least 1, got {self.max_frames}")
        if not self.stall_seconds > 0:
            raise ConfigError(f"live stall_seconds: positive, got {self.stall_seconds}")
        if self.perception_workers < 1:
            raise ConfigError(f"live perception workers: at least 1, got {self.perception_workers}")
        if self.fit_iterations is not None and self.fit_iterations < 0:
            raise ConfigError(f"live fit iterations: not negative, got {self.fit_iterations}")
        if self.statures is not None and len(self.statures) != 2:
            raise ConfigError(f"live statures: two standing heights, got {len(self.statures)}")
        check_statures(self.statures, "live statures")

    def method_config(self):
        """The method each window is reconstructed with: its preset, with ``fit_iterations`` where given."""
        from dataclasses import replace

        from socialmirror.inference.methods import method_config
        config = method_config(self.method)
        if self.fit_iterations is None:
            return config
        return replace(config, fit=replace(config.fit, iterations=self.fit_iterations))


@dataclass
class LiveSummary:
    """What ``--summary-json`` writes."""

    frames: int = 0  # frames taken and detected
    dropped: int = 0  # frames dropped because perception was behind
    windows: int = 0  # records emitted
    windows_without_pair: int = 0  # windows where two people were not in view together
    frames_in_no_window: int = 0  # detected, but slid out of the window while the previous one was reconstructed
    reconnects: int = 0
    p50_latency_s: float | None = None
    p95_latency_s: float | None = None
    ended: str = ""  # why the run ended: "end of stream", "stalled", "max frames", "interrupted"
    latencies_s: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "latencies_s"}


def parse_source(source: str) -> tuple[int | str, bool]:
    """(what OpenCV opens, whether it is a network stream): a camera index, a device path, a stream URL or an
    existing video file; anything else is a one-line ``InputError``."""
    text = str(source).strip()
    if text.isdigit():
        return int(text), False
    if _STREAM.match(text):
        return text, True
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise InputError(f"no camera at {text}")
        return text, False
    if not Path(text).is_file():
        raise InputError(f"live source not found: {text} (a camera index, /dev/videoN, an rtsp:// or http(s):// "
                         "stream, or a video file)")
    return text, False


class FrameFeed:
    """Frames of a source read by a thread into a bounded buffer; iterate for ``(index, arrival, rgb)``
    (arrival: ``time.monotonic()`` when the frame was read). ``dropped`` counts the frames the buffer lost."""

    def __init__(self, source: str, settings: LiveSettings):
        self.target, self.is_stream = parse_source(source)
        self.settings = settings
        self.dropped = self.reconnects = 0
        self.ended = ""
        self._frames: collections.deque = collections.deque()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._capture = self._open()
        import cv2
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if np.isfinite(fps) and 0 < fps < 1000 else 30.0
        self.size: tuple[int, int] | None = None
        self._thread = threading.Thread(target=self._read_all, name="socialmirror-live-reader", daemon=True)
        self._thread.start()

    def _open(self):
        import cv2
        timeout_ms = int(self.settings.stall_seconds * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        backend = cv2.CAP_ANY if isinstance(self.target, int) else cv2.CAP_FFMPEG
        capture = cv2.VideoCapture(self.target, backend, params)
        if not capture.isOpened():
            capture.release()
            raise InputError(f"cannot open the live source {self.target}")
        return capture

    def _read_all(self) -> None:
        import cv2
        index, start = 0, time.monotonic()
        last_frame = time.monotonic()
        try:
            while not self._stop.is_set():
                ok, frame = self._capture.read()
                if not ok or frame is None:
                    stalled = time.monotonic() - last_frame >= self.settings.stall_seconds
                    if self.is_stream and self.reconnects < self.settings.reconnects:
                        self.reconnects += 1
                        log.warning("live source %s %s; reconnecting (%d of %d)", self.target,
                                    "stalled" if stalled else "ended", self.reconnects, self.settings.reconnects)
                        self._capture.release()
                        time.sleep(min(0.5 * self.reconnects, 2.0))
                        try:
                            self._capture = self._open()
                        except InputError:
                            continue
                        last_frame = time.monotonic()
                        continue
                    self.ended = "stalled" if stalled else "end of stream"
                    break
                last_frame = time.monotonic()
                if self.settings.realtime and not self.is_stream and not isinstance(self.target, int):
                    # A file played at its own rate: frame i is due at start + i / fps.
                    time.sleep(max(0.0, start + index / self.fps - time.monotonic()))
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                self._put((index, time.monotonic(), rgb))
                index += 1
        finally:
            with self._ready:
                self._frames.append(None)  # the end, never dropped
                self._ready.notify_all()

    def _put(self, item) -> None:
        with self._ready:
            if len(self._frames) >= self.settings.buffer_frames:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(item)
            self._ready.notify_all()

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        while True:
            with self._ready:
                while not self._frames:
                    self._ready.wait(0.1)
                item = self._frames.popleft()
            if item is None:
                return
            if self.size is None:
                self.size = (int(item[2].shape[1]), int(item[2].shape[0]))
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.settings.stall_seconds + 1.0)
        self._capture.release()


def window_record(number: int, frames: list[int], estimate, observation, order=(0, 1)) -> dict:
    """One window's JSON record: its frames (source indices), the pair's track ids (within the window) and
    both people's joints (T, 2, 24, 3, metres, camera frame as result.npz) and pelvis translations, persons in
    ``order`` (``same_people_order``)."""
    order = list(order)
    return {"window": number, "frames": [int(f) for f in frames],
            "track_ids": [int(i) for i in np.asarray(observation.track_ids)[order]],
            "joints3d": np.round(estimate.joints[:, order].astype(np.float64), 4).tolist(),
            "transl": np.round(estimate.transl[:, order].astype(np.float64), 4).tolist()}


def same_people_order(previous: tuple[list[int], np.ndarray] | None, frames: list[int],
                      keypoints2d: np.ndarray) -> tuple[int, int]:
    """The order of this window's two people that keeps the previous record's persons: (0, 1), or (1, 0) when
    swapping brings their 2D keypoints ((T, 2, 24, 3) u, v, confidence) closer to the previous window's on
    the frames both windows hold (median pixel distance over the keypoints confident in both). ``previous``:
    (frames, keypoints2d in the order emitted), or None."""
    if previous is None:
        return (0, 1)
    earlier = {f: k for k, f in enumerate(previous[0])}
    shared = [(k, earlier[f]) for k, f in enumerate(frames) if f in earlier]
    if not shared:
        return (0, 1)
    now = np.stack([keypoints2d[k] for k, _ in shared]).astype(np.float64)
    then = np.stack([previous[1][j] for _, j in shared]).astype(np.float64)

    def cost(order) -> float:
        a, b = now[:, list(order)], then
        ok = (a[..., 2] > 0.3) & (b[..., 2] > 0.3)
        d = np.linalg.norm(a[..., :2] - b[..., :2], axis=-1)[ok]
        return float(np.median(d)) if d.size else np.inf
    return (1, 0) if cost((1, 0)) < cost((0, 1)) else (0, 1)


def window_statures(statures, order) -> np.ndarray | None:
    """The stated heights (person 0, person 1 as the records emit them; 0 = not known) in a window's own
    order of the pair, whose person ``order[j]`` is emitted as person j; NaN where not known."""
    from socialmirror.data.observation import stated_statures
    heights = stated_statures(statures)
    if heights is None:
        return None
    out = np.empty(2)
    out[list(order)] = heights
    return out


def _reconstruct_window(models, detections: list, indices: list[int], size: tuple[int, int], fps: float,
                        settings: LiveSettings, previous=None):
    """(observation, estimate, order) of a window's closest pair, ``order`` the persons' order that keeps the
    previous record's (``same_people_order``), known before the 3D stages so that stated heights reach the
    right person; ``InputError`` when the window has no pair."""
    from dataclasses import replace

    from socialmirror import pipeline
    from socialmirror.perception.tracking import track
    tracks = track(detections, fps=fps, image_size=size)
    cache = pipeline.StageCache(None)
    observation = pipeline.pair(pipeline.Perception(None, tracks), cache)
    order = same_people_order(previous, indices, observation.keypoints2d)
    observation = replace(observation, statures=window_statures(settings.statures, order))
    semantics = (lambda: pipeline.semantic_inputs(models, observation, cache, seed=settings.seed,  # noqa: E731
                                                  progress=False))
    return observation, pipeline.estimate(models, observation, settings.method_config(), cache, seed=settings.seed,
                                          semantics=semantics, progress=False), order


def run_live(source: str, settings: LiveSettings = LiveSettings(), emit: Callable[[dict], None] = print,
             models=None, detector=None) -> LiveSummary:
    """Reconstruct ``source`` window by window as its frames arrive (module docstring); ``emit`` receives each
    record. ``detector``: as ``detect_and_track``'s (a detector passed in runs alone, in one worker). Returns
    the summary (also on Ctrl-C)."""
    from functools import partial

    from socialmirror import pipeline
    from socialmirror.perception.pipeline import DetectorPool, makes_detectors
    from socialmirror.perception.pose import MediaPipePoseDetector
    models = models or pipeline.load_models()
    workers = settings.perception_workers if makes_detectors(detector) else 1
    detectors = DetectorPool.of(detector or partial(MediaPipePoseDetector, num_poses=3), workers)
    summary = LiveSummary()
    try:
        # Warmed up before the source is opened: its frames arrive from then on, and those that came while the
        # detectors were made (about a second) were dropped.
        detectors.warm_up()
        feed = FrameFeed(source, settings)
    except BaseException:
        detectors.close()
        raise
    windows = _WindowWorker(models, feed, settings, summary, emit)
    taken: collections.deque = collections.deque()  # (index, arrival) of the frames handed to perception

    def frames():
        for index, arrival, rgb in feed:
            taken.append((index, arrival))
            yield rgb
    try:
        for people in detectors.detect_in_order(frames()):
            index, arrival = taken.popleft()
            windows.add(index, arrival, people)
            summary.frames += 1
            if settings.max_frames is not None and summary.frames >= settings.max_frames:
                summary.ended = "max frames"
                break
        else:
            summary.ended = feed.ended
        windows.finish()
    except KeyboardInterrupt:
        summary.ended = "interrupted"
    finally:
        windows.close()
        feed.close()
        detectors.close()
    summary.dropped, summary.reconnects = feed.dropped, feed.reconnects
    if summary.latencies_s:
        summary.p50_latency_s, summary.p95_latency_s = (float(v) for v in
                                                        np.percentile(summary.latencies_s, [50, 95]))
    return summary


class _WindowWorker:
    """The 3D stages of each window in a thread of their own, so that perception goes on meanwhile (the two
    share the two cores): a window is started when ``stride`` new frames have come and the previous one is
    done; its record is emitted from the perception thread (``add``, ``finish``)."""

    def __init__(self, models, feed: FrameFeed, settings: LiveSettings, summary: LiveSummary,
                 emit: Callable[[dict], None]):
        from concurrent.futures import ThreadPoolExecutor
        self.models, self.feed, self.settings, self.summary, self.emit = models, feed, settings, summary, emit
        self.window: collections.deque = collections.deque(maxlen=settings.window)  # (index, people)
        self.waiting: list[tuple[int, float]] = []  # (index, arrival) of the frames no window has taken yet
        self.new = 0
        self.running = None  # (future, indices, arrivals of the frames it is the first record of)
        self.previous = None  # the last record's frames and keypoints, its persons' order (same_people_order)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="socialmirror-live-3d")

    def add(self, index: int, arrival: float, people: list) -> None:
        self.window.append((index, people))
        self.waiting.append((index, arrival))
        self.new += 1
        if self.running is not None and self.running[0].done():
            self._collect()
        if self.running is None and len(self.window) == self.settings.window and self.new >= self.settings.stride:
            self._start()

    def finish(self) -> None:
        """At the end of the stream: the running window's record, then one of the last frames if any."""
        if self.running is not None:
            self._collect()
        if self.new and len(self.window) == self.settings.window:
            self._start()
            self._collect()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _start(self) -> None:
        indices, detections = (list(v) for v in zip(*self.window))
        taken = [a for i, a in self.waiting if i >= indices[0]]
        self.summary.frames_in_no_window += len(self.waiting) - len(taken)  # slid out while the 3D ran
        self.waiting.clear()
        self.new = 0
        future = self.pool.submit(_reconstruct_window, self.models, detections, indices, self.feed.size,
                                  self.feed.fps, self.settings, self.previous)
        self.running = (future, indices, taken)

    def _collect(self) -> None:
        future, indices, taken = self.running
        self.running = None
        try:
            observation, estimate, order = future.result()
        except InputError as exc:
            self.summary.windows_without_pair += 1
            log.info("live window ending at frame %d: %s", indices[-1], exc)
            return
        self.previous = (indices, np.asarray(observation.keypoints2d)[:, list(order)])
        record = window_record(self.summary.windows, indices, estimate, observation, order)
        latencies = [time.monotonic() - a for a in taken]
        record["latency_s"] = round(max(latencies), 4) if latencies else None
        self.summary.latencies_s += latencies
        self.summary.windows += 1
        self.emit(record)


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SocialMirror live</title>
<style>body{margin:0;background:#1d232a;color:#dde;font:14px sans-serif} #info{padding:6px 10px}
canvas{display:block;background:#f3f4f6;margin:0 10px}</style></head>
<body><div id="info">waiting for the first window...</div>
<canvas id="front" width="480" height="480" style="float:left"></canvas>
<canvas id="top" width="480" height="480"></canvas>
<script>
const PARENTS = %(parents)s, COLORS = ["#4687eb", "#f08c32", "#5abe6e", "#c85ac8"];
function draw(canvas, people, u, v, label) {
  const c = canvas.getContext("2d"); c.clearRect(0, 0, canvas.width, canvas.height);
  c.fillStyle = "#556"; c.fillText(label, 8, 16);
  const pts = people.flat(), us = pts.map(u), vs = pts.map(v);
  const cu = (Math.min(...us) + Math.max(...us)) / 2, cv = (Math.min(...vs) + Math.max(...vs)) / 2;
  const s = 0.8 * canvas.width / Math.max(2.0, Math.max(...us) - Math.min(...us), Math.max(...vs) - Math.min(...vs));
  people.forEach((joints, p) => {
    c.strokeStyle = COLORS[p %% COLORS.length]; c.lineWidth = 4; c.beginPath();
    PARENTS.forEach((parent, j) => { if (parent < 0) return;
      c.moveTo(canvas.width / 2 + s * (u(joints[parent]) - cu), canvas.height / 2 + s * (v(joints[parent]) - cv));
      c.lineTo(canvas.width / 2 + s * (u(joints[j]) - cu), canvas.height / 2 + s * (v(joints[j]) - cv)); });
    c.stroke(); });
}
async function poll() {
  try {
    const r = await (await fetch("latest.json", {cache: "no-store"})).json();
    if (r.joints3d) {
      const last = r.joints3d[r.joints3d.length - 1];  // the window's newest frame: (people, 24, 3)
      draw(document.getElementById("front"), last, (p) => p[0], (p) => p[1], "camera view (x right, y down)");
      draw(document.getElementById("top"), last, (p) => p[0], (p) => -p[2], "from above (depth up)");
      document.getElementById("info").textContent = `window ${r.window}, frames ${r.frames[0]}-` +
        `${r.frames[r.frames.length - 1]}, latency ${r.latency_s} s`;
    }
  } catch (e) {}
  setTimeout(poll, 250);
}
poll();
</script></body></html>
"""


class LatestPage:
    """A local web page (127.0.0.1) showing the newest record's bodies (camera view and from above), polling
    ``latest.json``; ``update(record)`` replaces what it shows."""

    def __init__(self, port: int = 0):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from socialmirror.body.skeleton import SMPL24_PARENTS
        page = (_PAGE % {"parents": list(SMPL24_PARENTS)}).encode("utf-8")
        latest = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                path = self.path.split("?")[0]
                if path in ("/", "/index.html"):
                    body, kind = page, "text/html; charset=utf-8"
                elif path == "/latest.json":
                    body, kind = latest.latest_json(), "application/json"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self._lock = threading.Lock()
        self._latest = b"{}"
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def update(self, record: dict) -> None:
        import json
        text = json.dumps(record).encode("utf-8")
        with self._lock:
            self._latest = text

    def latest_json(self) -> bytes:
        with self._lock:
            return self._latest

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


__all__ = ["FrameFeed", "LatestPage", "LiveSettings", "LiveSummary", "parse_source", "run_live", "same_people_order",
           "window_record", "window_statures"]
