"""The OpenAI-compatible client and the VLM path of the annotator, against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from _semantics_helpers import handshake
from socialmirror.semantics.annotations import Contact
from socialmirror.semantics.annotator import annotate_clips, parse_source
from socialmirror.semantics.client import OpenAICompatibleClient, VLMError
from socialmirror.semantics.prompt import encode_frames

SECRET = "sk-test-SECRET-0123456789"
MODEL = "test-vlm"

PAPER_REPLY = """[Start of sentences]
Text 1: a person shakes hands with others.
Text 2: a person shakes hands with others.
[End of sentences]
[Start of joint-joint contact pair(s)]
{right_wrist, right_wrist, 5, 10}
[End of joint-joint contact pair(s)]"""
JSON_REPLY = json.dumps({"text1": "a person shakes hands with others.", "text2": "a person shakes hands back.",
                         "contacts": [["right_wrist", "right_wrist", 5, 10]]})
GARBAGE_REPLY = "I'm sorry, I can't see any people in these images."
BAD_JOINTS_REPLY = ("Text 1: Person 1 shakes hands with person 2.\nText 2: a person shakes hands with others.\n"
                    "{right_pinky, right_wrist, 5, 10}\n{right_wrist, right_wrist, 5, 40}\n{neck, head, 30, 40}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _chat(self, content: str) -> None:
        body = {"id": "x", "object": "chat.completion", "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}]}
        self._send(200, json.dumps(body).encode())

    def do_POST(self):  # noqa: N802 - http.server's naming
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        mode = self.path.strip("/").split("/")[0]
        with server.lock:
            server.requests.append({"mode": mode, "path": self.path, "auth": self.headers.get("Authorization"),
                                    "body": json.loads(raw)})
        if not self.path.endswith("/v1/chat/completions"):
            self._send(404, b'{"error": "not found"}')
        elif mode == "paper":
            self._chat(PAPER_REPLY)
        elif mode == "json":
            self._chat("```json\n" + JSON_REPLY + "\n```")
        elif mode == "garbage":
            self._chat(GARBAGE_REPLY)
        elif mode == "badjoints":
            self._chat(BAD_JOINTS_REPLY)
        elif mode == "slow":
            time.sleep(1.5)
            self._chat(PAPER_REPLY)
        elif mode == "error500":
            # a hostile server that echoes the key back: the client must scrub it
            self._send(500, json.dumps({"error": f"boom {self.headers.get('Authorization')}"}).encode())
        elif mode == "flaky":  # fails once, then answers
            with server.lock:
                server.flaky += 1
                n = server.flaky
            if n == 1:
                self._send(503, b'{"error": "warming up"}')
            else:
                self._chat(PAPER_REPLY)
        elif mode == "echo":  # a valid reply that echoes the key inside its sentences
            self._chat(PAPER_REPLY.replace("shake", f"shake {self.headers.get('Authorization')}", 1))
        elif mode in ("trickle", "silent"):  # headers, then a byte every 0.2 s / nothing at all
            body = json.dumps({"choices": [{"message": {"content": PAPER_REPLY}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            try:
                for i in range(len(body) if mode == "trickle" else 0):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.2)
                time.sleep(3.0 if mode == "silent" else 0.0)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif mode == "notjson":
            self._send(200, b"<html>hello</html>", "text/html")
        elif mode == "unauthorized":
            self._send(401, b'{"error": {"message": "bad key"}}')
        else:
            self._send(404, b'{"error": "unknown mode"}')


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.lock = threading.Lock()
    srv.requests = []
    srv.flaky = 0
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("SOCIALMIRROR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TEST_VLM_KEY", SECRET)


def _client(server, mode: str, **kw) -> OpenAICompatibleClient:
    port = server.server_address[1]
    opts = dict(api_key_env="TEST_VLM_KEY", timeout=0.5, max_retries=1, backoff=0.01)
    opts.update(kw)
    return OpenAICompatibleClient(f"http://127.0.0.1:{port}/{mode}/v1", MODEL, **opts)


def _frames(seed: int = 0, n: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 24, 32, 3), dtype=np.uint8)


def _requests(server, mode: str) -> list[dict]:
    with server.lock:
        return [r for r in server.requests if r["mode"] == mode]


def _annotate(server, mode: str, seed: int = 0, **kw):
    return annotate_clips("openai", client=_client(server, mode, **kw), frames=_frames(seed),
                          joints3d=handshake(), up=(0, 1, 0))


def test_paper_reply(server):
    ann = _annotate(server, "paper")
    (clip,) = ann.clips
    assert clip.source == "openai" and (clip.start, clip.end) == (0, 16)
    assert clip.contacts == (Contact("right_wrist", "right_wrist", 5, 10),)
    assert clip.text == ("a person shakes hands with others.", "a person shakes hands with others.")
    assert clip.confidence > 0.9  # the geometry agrees
    req = _requests(server, "paper")[-1]
    assert req["auth"] == f"Bearer {SECRET}"
    body = req["body"]
    assert body["model"] == MODEL and len(body["messages"]) == 1
    parts = body["messages"][0]["content"]
    assert sum(p["type"] == "image_url" for p in parts) == 16
    assert [p["text"] for p in parts if p["type"] == "text"][2:] == [f"frame {k}" for k in range(16)]


def test_json_reply(server):
    (clip,) = _annotate(server, "json").clips
    assert clip.source == "openai"
    assert clip.contacts == (Contact("right_wrist", "right_wrist", 5, 10),)
    assert clip.text[1] == "a person shakes hands back."


def test_garbage_reply_falls_back_once(server, caplog):
    caplog.set_level(logging.WARNING)
    (clip,) = _annotate(server, "garbage").clips
    assert clip.source == "offline"
    assert len(clip.warnings) == 1 and "unusable" in clip.warnings[0]
    assert sum("unusable" in r.getMessage() for r in caplog.records) == 1
    # the offline annotator saw the handshake
    assert [(c.joint_a, c.joint_b) for c in clip.contacts] == [("right_wrist", "right_wrist")]


def test_unknown_joints_and_out_of_range_frames(server):
    (clip,) = _annotate(server, "badjoints").clips
    assert clip.source == "openai"
    assert clip.contacts == (Contact("right_wrist", "right_wrist", 5, 15),)
    assert clip.text[0] == "a person shakes hands with others."
    text = " ".join(clip.warnings)
    assert "right_pinky" in text and "clipped" in text and "outside the clip" in text


def test_slow_server_times_out_and_falls_back(server):
    t = time.monotonic()
    (clip,) = _annotate(server, "slow").clips
    assert time.monotonic() - t < 4.0
    assert clip.source == "offline"
    assert any("timed out" in w for w in clip.warnings)


def test_http_500_is_retried_then_falls_back(server, caplog):
    caplog.set_level(logging.DEBUG)
    before = len(_requests(server, "error500"))
    (clip,) = _annotate(server, "error500", max_retries=2).clips
    assert len(_requests(server, "error500")) - before == 3  # first attempt + 2 retries
    assert clip.source == "offline"
    assert any("HTTP 500" in w for w in clip.warnings)
    # the server echoed the key; it appears nowhere on our side
    assert SECRET not in caplog.text
    assert all(SECRET not in w for w in clip.warnings)


def test_retry_then_success(server):
    client = _client(server, "flaky", max_retries=2)
    reply = client.annotate_clip(encode_frames(_frames(7)))
    assert reply.attempts == 2 and not reply.cached
    assert "right_wrist" in reply.text


def test_key_never_in_errors_or_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    client = _client(server, "error500", max_retries=1)
    assert SECRET not in repr(client)
    with pytest.raises(VLMError) as info:
        client.annotate_clip(encode_frames(_frames(3)))
    assert SECRET not in str(info.value) and "***" in str(info.value)
    assert SECRET not in caplog.text
    with pytest.raises(VLMError) as info:  # not retried: 401 is final
        _client(server, "unauthorized", max_retries=3).annotate_clip(encode_frames(_frames(4)))
    assert "401" in str(info.value) and SECRET not in str(info.value)
    assert len(_requests(server, "unauthorized")) == 1
    with pytest.raises(VLMError, match="not JSON"):
        _client(server, "notjson").annotate_clip(encode_frames(_frames(5)))


def test_cache_hit_on_second_call(server, tmp_path):
    client = _client(server, "paper", cache_dir=tmp_path / "vlm")
    images = encode_frames(_frames(11))
    before = len(_requests(server, "paper"))
    first = client.annotate_clip(images)
    second = client.annotate_clip(images)
    assert not first.cached and second.cached and second.text == first.text
    assert len(_requests(server, "paper")) - before == 1
    assert len(list((tmp_path / "vlm").glob("*.json"))) == 1
    # another model or other images miss the cache
    other = _client(server, "paper", cache_dir=tmp_path / "vlm")
    other.model = "another-model"
    assert not other.annotate_clip(images).cached
    assert not client.annotate_clip(encode_frames(_frames(12))).cached


def test_unusable_replies_are_not_cached(server, tmp_path):
    ann1 = annotate_clips("openai", client=_client(server, "garbage", cache_dir=tmp_path / "g"),
                          frames=_frames(21), joints3d=handshake(), up=(0, 1, 0))
    assert ann1.clips[0].source == "offline"
    assert not list((tmp_path / "g").glob("*.json"))


def test_default_cache_dir_follows_socialmirror_cache(server, tmp_path):
    client = _client(server, "json")
    client.annotate_clip(encode_frames(_frames(31)))
    assert list((tmp_path / "cache" / "vlm").glob("*.json"))


def test_unreachable_server_reported_and_run_goes_on(caplog):
    caplog.set_level(logging.WARNING)
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = OpenAICompatibleClient(f"http://127.0.0.1:{port}/v1", MODEL, api_key_env="TEST_VLM_KEY",
                                    timeout=0.5, max_retries=1, backoff=0.0)
    j = np.concatenate([handshake(), handshake(), handshake()])
    ann = annotate_clips("openai", client=client, frames=_frames(0, 48), joints3d=j, up=(0, 1, 0))
    assert [c.source for c in ann.clips] == ["offline"] * 3
    assert "connection error" in ann.clips[0].warnings[0]
    assert "unreachable" in ann.clips[2].warnings[0]
    assert sum("in a row" in r.getMessage() for r in caplog.records) == 1
    assert SECRET not in caplog.text


def test_bad_configuration_is_an_error():
    with pytest.raises(ValueError):
        OpenAICompatibleClient("localhost:8000", MODEL)
    with pytest.raises(ValueError):
        annotate_clips("openai", frames=_frames(0), joints3d=handshake())
    with pytest.raises(ValueError):
        parse_source("vlm")
    assert parse_source("file:/tmp/a.json") == ("file", "/tmp/a.json")
    assert OpenAICompatibleClient("http://h:1/v1/", MODEL).url == "http://h:1/v1/chat/completions"
    assert OpenAICompatibleClient("http://h:1/v1/chat/completions", MODEL).url == "http://h:1/v1/chat/completions"


def test_a_key_echoed_inside_a_valid_reply_is_written_nowhere(server, tmp_path):
    """Issue 15 case 9: a server that echoes the key in a successful reply: neither the annotations nor the
    reply cache may hold it."""
    client = _client(server, "echo", cache_dir=tmp_path / "vlm")
    reply = client.annotate_clip(encode_frames(_frames(31)))
    assert SECRET not in reply.text and "***" in reply.text
    cached = list((tmp_path / "vlm").glob("*.json"))
    assert cached and all(SECRET not in path.read_text() for path in cached)
    annotations = annotate_clips("openai", client=_client(server, "echo", cache_dir=tmp_path / "vlm2"),
                                 frames=_frames(32), joints3d=handshake(), up=(0, 1, 0))
    out = annotations.write(tmp_path / "annotations.json")
    assert SECRET not in out.read_text()


@pytest.mark.parametrize("mode", ["trickle", "silent"])
def test_a_server_that_trickles_or_stalls_is_given_up_at_the_deadline(server, mode):
    """Issue 15 case 3: the deadline covers the whole request, retries and every byte read: a server that
    trickles a byte every 0.2 s (it would take minutes) or sends headers and then nothing costs about the
    deadline, not a socket timeout per byte or per attempt."""
    client = _client(server, mode, timeout=1.0, max_retries=2)
    t0 = time.monotonic()
    with pytest.raises(VLMError, match="timed out"):
        client.annotate_clip(encode_frames(_frames(41)))
    assert time.monotonic() - t0 < 2.5
