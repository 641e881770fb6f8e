"""An OpenAI-compatible chat/completions client (standard library only) with retries and a reply cache.

``POST {base_url}/chat/completions`` with ``{"model", "messages", "temperature", "max_tokens"}``, which vLLM,
Ollama (``http://localhost:11434/v1``), llama.cpp's server and LM Studio all serve. ``base_url`` may also be
the full ``.../chat/completions`` URL.

* Deadline: ``timeout`` seconds for the whole request of a clip: every attempt, the waits between them and
  every byte read (a server that sends headers and then nothing, or trickles a byte a second, is given up at
  the deadline).
* Retries: at most ``max_retries`` more attempts after the first, on timeouts, connection errors, HTTP 5xx,
  429 and 408, waiting ``backoff * 2**k`` seconds (capped at ``max_backoff``; a server's ``Retry-After`` is
  honoured up to that cap). Other HTTP errors (400, 401, 404, ...) and replies that are not chat completions
  fail at once. Failures raise ``VLMError`` with a one-line message.
* The API key is read from the environment variable named by ``api_key_env`` at request time and sent as
  ``Authorization: Bearer ...``; it is never logged, never part of ``repr`` and scrubbed from every message
  this module logs, raises, returns or caches (even text a server echoes back inside a valid reply).
* Cache: accepted replies are stored under ``cache_dir()/vlm/<key>.json``, keyed by a hash of the clip's
  image bytes, the prompt version and text, and the model (``prompt.clip_cache_key``); a second request for
  the same clip is answered from disk without a request. ``accept`` decides which replies are cached (the
  annotator caches only replies that parse).
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from socialmirror.errors import SocialMirrorError
from socialmirror.semantics.annotations import atomic_write_text
from socialmirror.semantics.prompt import PROMPT_VERSION, build_messages, clip_cache_key

log = logging.getLogger(__name__)

_MAX_BODY = 8 * 1024 * 1024


class VLMError(SocialMirrorError, RuntimeError):
    """The VLM request failed (after retries where retrying makes sense); the message is one line."""


class VLMDeadlineError(VLMError):
    """The VLM request used up its whole deadline (``timeout``) without a reply."""


@dataclass(frozen=True)
class VLMReply:
    text: str
    cached: bool
    attempts: int
    seconds: float
    model: str


class OpenAICompatibleClient:
    """See the module docstring."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout: float = 30.0,
                 max_retries: int = 2, backoff: float = 1.0, max_backoff: float = 30.0, temperature: float = 0.0,
                 max_tokens: int = 512, cache: bool = True, cache_dir: str | os.PathLike | None = None,
                 extra_body: dict | None = None, sleep: Callable[[float], None] = time.sleep):
        if not isinstance(base_url, str) or not base_url.strip():
            raise ValueError("base_url must be a URL such as http://localhost:8000/v1")
        url = base_url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = str(model)
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = max(int(max_retries), 0)
        self.backoff = max(float(backoff), 0.0)
        self.max_backoff = max(float(max_backoff), 0.0)
        self.temperature = temperature
        self.max_tokens = int(max_tokens)
        self.use_cache = bool(cache)
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.extra_body = dict(extra_body or {})
        self._sleep = sleep

    def __repr__(self) -> str:  # never shows the key
        return (f"OpenAICompatibleClient(url={self.url!r}, model={self.model!r}, "
                f"api_key_env={self.api_key_env!r}, timeout={self.timeout}, max_retries={self.max_retries})")

    # ---- key handling ------------------------------------------------------------------------------------
    def _key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        return key.strip() if key and key.strip() else None

    def _scrub(self, text: str) -> str:
        key = self._key()
        text = str(text)
        if key and len(key) >= 4:
            text = text.replace(key, "***")
        return text

    # ---- cache -------------------------------------------------------------------------------------------
    @property
    def cache_dir(self) -> Path:
        if self._cache_dir is not None:
            return self._cache_dir
        from socialmirror.paths import cache_dir
        return cache_dir() / "vlm"

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.json"

    def cache_get(self, key: str) -> str | None:
        if not self.use_cache:
            return None
        path = self._cache_path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("reply"), str):
            return None
        return data["reply"]

    def cache_put(self, key: str, reply: str) -> None:
        if not self.use_cache:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self._cache_path(key), json.dumps(
                {"model": self.model, "prompt_version": PROMPT_VERSION, "url": self.url, "reply": reply,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, ensure_ascii=False))
        except OSError as exc:
            log.warning("could not write the VLM cache entry %s: %s", key[:12], exc)

    # ---- requests ----------------------------------------------------------------------------------------
    def complete(self, messages: Sequence[dict], *, cache_key: str | None = None,
                 accept: Callable[[str], bool] | None = None) -> VLMReply:
        """Send ``messages``; return the reply text (from the cache when ``cache_key`` is known there)."""
        t_start = time.monotonic()
        deadline = t_start + self.timeout  # the whole request: every attempt, wait and byte read
        if cache_key is not None:
            hit = self.cache_get(cache_key)
            if hit is not None:
                log.debug("VLM reply for %s from the cache", cache_key[:12])
                return VLMReply(hit, True, 0, time.monotonic() - t_start, self.model)
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), "temperature": self.temperature,
                                "max_tokens": self.max_tokens, "stream": False}
        body.update(self.extra_body)
        data = json.dumps(body).encode("utf-8")
        attempts = 0
        last_error = "no attempt made"
        while True:
            attempts += 1
            retry_after: float | None = None
            try:
                text = self._scrub(self._post(data, deadline))  # a server may echo the key: written nowhere
                if cache_key is not None and (accept is None or accept(text)):
                    self.cache_put(cache_key, text)
                return VLMReply(text, False, attempts, time.monotonic() - t_start, self.model)
            except _Retryable as exc:
                last_error = str(exc)
                retry_after = exc.retry_after
            if attempts > self.max_retries or time.monotonic() >= deadline:
                break
            wait = min(self.backoff * (2 ** (attempts - 1)), self.max_backoff)
            if retry_after is not None:
                wait = min(max(wait, retry_after), self.max_backoff)
            wait = min(wait, max(deadline - time.monotonic(), 0.0))
            log.info("VLM request failed (%s); retry %d of %d in %.2f s", last_error, attempts,
                     self.max_retries, wait)
            if wait > 0:
                self._sleep(wait)
        error = VLMDeadlineError if time.monotonic() >= deadline else VLMError
        raise error(self._scrub(f"VLM request to {self.url} failed after {attempts} attempt(s): {last_error}"))

    def annotate_clip(self, images: Sequence[bytes], *, frame_numbers: Sequence[int] | None = None,
                      accept: Callable[[str], bool] | None = None) -> VLMReply:
        """Send one clip (JPEG bytes per frame, see ``prompt.encode_frames``) with the Table 1 prompt."""
        messages = build_messages(images, frame_numbers=frame_numbers)
        key = clip_cache_key(images, self.model, frame_numbers=frame_numbers)
        return self.complete(messages, cache_key=key, accept=accept)

    def _opener(self) -> urllib.request.OpenerDirector:
        """Local servers (loopback hosts) are reached directly, whatever proxy the environment sets."""
        host = (urllib.parse.urlsplit(self.url).hostname or "").lower()
        if host in ("localhost", "::1") or host.startswith("127."):
            return urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return urllib.request.build_opener()

    def _post(self, data: bytes, deadline: float) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with self._opener().open(req, timeout=max(deadline - time.monotonic(), 0.01)) as resp:
                raw = _read_by(resp, deadline, self.timeout)
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                detail = exc.read(2000).decode("utf-8", errors="replace")
            except Exception:  # noqa: BLE001 - the body is only a hint
                detail = ""
            finally:
                exc.close()
            detail = " ".join(self._scrub(detail).split())[:200]
            msg = f"HTTP {status}" + (f": {detail}" if detail else "")
            if status >= 500 or status in (408, 429):
                raise _Retryable(msg, _retry_after(exc.headers)) from None
            raise VLMError(self._scrub(f"VLM request to {self.url} failed: {msg}")) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise _Retryable(f"timed out after {self.timeout:g} s") from None
            raise _Retryable(self._scrub(f"connection error: {reason}")) from None
        except (socket.timeout, TimeoutError):
            raise _Retryable(f"timed out after {self.timeout:g} s") from None
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            raise _Retryable(self._scrub(f"connection error: {type(exc).__name__}: {exc}")) from None
        if len(raw) > _MAX_BODY:
            raise VLMError(f"VLM reply from {self.url} is larger than {_MAX_BODY} bytes")
        return _extract_content(raw, self.url, self._scrub)


def _read_by(resp, deadline: float, budget: float) -> bytes:
    """The body, up to ``_MAX_BODY + 1`` bytes, read chunk by chunk so that a server trickling bytes cannot
    hold the run past the deadline (each read waits at most the socket's timeout)."""
    chunks, size = [], 0
    while size <= _MAX_BODY:
        if time.monotonic() > deadline:
            raise _Retryable(f"timed out after {budget:g} s (the reply was still arriving)")
        chunk = resp.read1(min(65536, _MAX_BODY + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class _Retryable(SocialMirrorError):
    def __init__(self, msg: str, retry_after: float | None = None):
        super().__init__(msg)
        self.retry_after = retry_after


def _retry_after(headers) -> float | None:
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return max(float(value), 0.0) if value is not None else None
    except (TypeError, ValueError):
        return None


def _extract_content(raw: bytes, url: str, scrub: Callable[[str], str]) -> str:
    """The assistant's text from a chat/completions response body."""
    try:
        obj = json.loads(raw.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        head = " ".join(raw[:80].decode("utf-8", errors="replace").split())
        raise VLMError(scrub(f"VLM reply from {url} is not JSON (starts with {head!r})")) from None
    try:
        if isinstance(obj, dict) and "error" in obj and "choices" not in obj:
            err = obj["error"]
            msg = err.get("message") if isinstance(err, dict) else err
            raise VLMError(scrub(f"VLM server at {url} returned an error: {str(msg)[:200]}"))
        choice = obj["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        if content is None and isinstance(choice.get("text"), str):  # legacy completions shape
            content = choice["text"]
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            reasoning = message.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning.strip():
                content = reasoning
            else:
                raise TypeError("no text content")
        return content
    except VLMError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError):
        raise VLMError(f"VLM reply from {url} is not a chat completion (no choices[0].message.content)") from None
