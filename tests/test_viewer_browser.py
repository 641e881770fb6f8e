"""viewer.html: self-contained, and in headless Chromium (Debian's ``chromium``) it loads with no network,
shows both bodies, and its frame slider moves them. The browser part skips cleanly without Chromium."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from socialmirror.render.mesh_renderer import PERSON_COLORS
from socialmirror.render.viewer import encode_animation, write_viewer_html

T = 10
# Headless, no GPU, and no network for the page: every host name fails to resolve and every request goes to
# a dead proxy (so a page that needed a CDN would show nothing).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--enable-unsafe-swiftshader",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"]


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def anny_sequence():
    torch = pytest.importorskip("torch")
    from socialmirror.body import build_body_model

    model = build_body_model("anny")
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))  # body frame (y up, +z) -> camera frame, facing it

    def ry(a):
        c, s = float(np.cos(a)), float(np.sin(a))
        return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])

    rot = torch.eye(3).expand(T, 2, 24, 3, 3).clone()
    for t in range(T):
        rot[t, 0, 0] = flip @ ry(np.pi / 2 + 0.08 * t)  # the two face each other; person 0 turns
        rot[t, 1, 0] = flip @ ry(-np.pi / 2)
    transl = torch.tensor([[-0.45, 0.3, 3.5], [0.45, 0.3, 3.5]]).expand(T, 2, 3).clone()
    transl[:, 0, 0] += torch.linspace(0.0, 0.35, T)  # person 0 walks towards person 1
    with torch.no_grad():
        out = model(rot, transl=transl)
    return out.vertices.numpy(), out.faces.numpy(), out.joints.numpy()


def test_encode_roundtrip(anny_sequence):
    """The page's decoding (done here in numpy) gives the vertices back to the quantisation step."""
    import base64
    import zlib

    from socialmirror.render.viewer import world_frame

    verts, faces, _ = anny_sequence
    data = encode_animation(verts, faces, fps=25)
    n = verts.size
    planes = np.frombuffer(zlib.decompress(base64.b64decode(data["positions"]["data"])), np.uint8)
    d = (planes[:n].astype(np.uint16) | (planes[n:].astype(np.uint16) << 8)).view(np.int16)
    q = np.cumsum(d.reshape(verts.shape).astype(np.int64), axis=0)
    q = ((q + 32768) % 65536 - 32768).astype(np.float64)
    w = q * data["positions"]["step"] + np.array(data["positions"]["offset"])
    Rw, origin = world_frame(verts.astype(np.float64))
    expected = (verts - origin) @ Rw.T
    assert np.abs(w - expected).max() <= data["positions"]["step"] / 2 + 1e-6
    assert abs(expected[..., 1].min()) < 0.01  # the ground (lowest vertices) at y = 0
    assert expected[..., 1].max() > 1.4  # y up: heads above the ground
    f = np.frombuffer(zlib.decompress(base64.b64decode(data["faces"]["data"])), np.uint16)
    assert np.array_equal(f.reshape(-1, 3), faces)


def test_viewer_is_self_contained(tmp_path, anny_sequence):
    verts, faces, joints = anny_sequence
    path = write_viewer_html(tmp_path / "viewer.html", verts, faces, fps=25, joints=joints, title="pair <test>")
    assert os.listdir(tmp_path) == ["viewer.html"]
    text = path.read_text(encoding="utf-8")
    assert 'id="frame-slider"' in text and "window.setFrame" in text and "viewerState" in text
    assert "pair &lt;test&gt;" in text
    # Nothing fetched from the network: no external scripts, styles or module URLs.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert not re.search(r"""(import|from)\s*\(?\s*["']https?://""", text)
    assert "Three.js Authors" in text  # the bundled library
    assert path.stat().st_size < 5_000_000


def test_viewer_size_warning(tmp_path, anny_sequence):
    verts, faces, _ = anny_sequence
    with pytest.warns(UserWarning, match="viewer.html is"):
        write_viewer_html(tmp_path / "v.html", verts, faces, fps=25, max_bytes=100_000)


def _screenshot(chromium: str, html: Path, query: str, out: Path, profile: Path) -> np.ndarray:
    import cv2

    cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", "--window-size=800,600",
           "--virtual-time-budget=5000", f"{html.as_uri()}?{query}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.exists(), f"chromium wrote no screenshot (rc {proc.returncode}): {proc.stderr[-2000:]}"
    img = cv2.imread(str(out))
    assert img is not None
    return img[..., ::-1]


def _color_pixels(img: np.ndarray, rgb) -> int:
    im = img.astype(float)
    bright = im.sum(2) > 60
    n = im / np.maximum(im.sum(2, keepdims=True), 1)
    c = np.asarray(rgb, float) / sum(rgb)
    return int(((np.abs(n - c).max(2) < 0.07) & bright).sum())


def _dump_dom(chromium: str, html: Path, query: str, profile: Path) -> str:
    cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
           f"{html.as_uri()}?{query}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def test_viewer_in_headless_chromium(tmp_path, anny_sequence):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium here (Debian: apt-get install -y chromium)")
    verts, faces, joints = anny_sequence
    html = write_viewer_html(tmp_path / "viewer.html", verts, faces, fps=25, joints=joints)
    profile = tmp_path / "profile"

    first = _screenshot(chromium, html, "frame=0", tmp_path / "frame0.png", profile)
    assert first.shape[:2] == (600, 800)
    assert first.std() > 10  # not blank
    for c in PERSON_COLORS[:2]:
        assert _color_pixels(first, c) > 2000, f"body colour {c} missing"

    # The frame slider, moved through its input event as a user would, changes the bodies.
    moved = _screenshot(chromium, html, f"slider={T - 1}", tmp_path / "slider.png", profile)
    for c in PERSON_COLORS[:2]:
        assert _color_pixels(moved, c) > 2000
    changed = np.abs(moved.astype(int) - first.astype(int)).max(2) > 30
    assert changed[:540].sum() > 500, "the slider did not move the bodies"  # above the control bar
    # The page's own account: ready, and at the slider's frame.
    dom = _dump_dom(chromium, html, f"slider={T - 1}", profile)
    assert 'data-ready="1"' in dom and f'data-frame="{T - 1}"' in dom
    assert f"{T} / {T}" in dom


def test_encode_missing_person_frame(anny_sequence):
    verts, faces, joints = anny_sequence
    verts = verts.copy()
    verts[3, 1] = np.nan
    data = encode_animation(verts, faces, fps=25, joints=joints)
    assert data["numFrames"] == T
    numbers = data["bounds"]["min"] + data["bounds"]["max"] + data["positions"]["offset"] + [data["positions"]["step"]]
    assert np.isfinite(numbers).all()
    assert max(data["bounds"]["max"]) < 3  # the missing frame did not stretch the bounds


def test_viewer_canvas_fallback_in_headless_chromium(tmp_path, anny_sequence):
    """Where WebGL is missing the page draws with Canvas 2D (forced here with ?renderer=canvas)."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium here (Debian: apt-get install -y chromium)")
    verts, faces, _ = anny_sequence
    html = write_viewer_html(tmp_path / "viewer.html", verts[:3], faces, fps=25)
    img = _screenshot(chromium, html, "renderer=canvas&frame=1", tmp_path / "canvas.png", tmp_path / "profile")
    for c in PERSON_COLORS[:2]:
        assert _color_pixels(img, c) > 2000, f"body colour {c} missing"


def test_encoding_chunk_by_chunk_gives_the_same_page_data(anny_sequence):
    """Meshes read three frames at a time (body.meshes.MeshFrames, as reconstruct's outputs read them) give
    exactly the page data of the whole array: bounds, deltas across chunk boundaries, a missing person-frame."""
    from socialmirror.body.meshes import MeshFrames

    verts, faces, joints = anny_sequence
    verts = verts.copy()
    verts[2, 1] = np.nan  # person 1 not reconstructed in frame 2
    calls = []

    def skin(frames):
        calls.append(len(frames))
        return verts[frames]
    whole = encode_animation(verts, faces, fps=25, joints=joints)
    chunked = encode_animation(MeshFrames(skin, len(verts), chunk=3), faces, fps=25, joints=joints)
    assert chunked == whole and max(calls) <= 3


def test_streamed_page_is_the_page_of_the_data(tmp_path, anny_sequence):
    """The page written chunk by chunk (meshes read three frames at a time, positions streamed into the file)
    is viewer_html of encode_animation: the same HTML around the data and the same data once inflated."""
    import base64
    import json
    import zlib

    from socialmirror.body.meshes import MeshFrames
    from socialmirror.render.viewer import viewer_html

    verts, faces, joints = anny_sequence
    title = "a @positions@ title"  # the placeholder's text in a title changes nothing
    path = write_viewer_html(tmp_path / "viewer.html", MeshFrames(lambda f: verts[f], len(verts), chunk=3), faces,
                             fps=25, joints=joints, title=title)
    expected = viewer_html(encode_animation(verts, faces, fps=25, joints=joints), title=title)
    pattern = r'(<script id="sm-data" type="application/json">)(.*?)(</script>)'
    written = path.read_text(encoding="utf-8")
    (got_json,), (want_json,) = ([m.group(2) for m in re.finditer(pattern, t, re.S)] for t in (written, expected))
    assert re.sub(pattern, "", written, flags=re.S) == re.sub(pattern, "", expected, flags=re.S)
    got, want = json.loads(got_json), json.loads(want_json)
    inflate = (lambda d: zlib.decompress(base64.b64decode(d["positions"].pop("data"))))  # noqa: E731
    assert inflate(got) == inflate(want) and got == want
