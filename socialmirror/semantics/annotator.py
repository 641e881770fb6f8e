"""Per-clip semantic annotation: the VLM (OpenAI-compatible), the offline annotator, or a user's file.

``annotate_clips(source, clips=..., frames=..., joints3d=...)`` returns ``Annotations`` with one
``ClipAnnotation`` per clip ``[start, end)`` (by default L-frame clips from ``socialmirror.windows.clip_ranges``):

* ``"openai"``: the clip's crop frames and the Table 1 prompt go to the server (``client`` or
  ``vlm_url``/``vlm_model``); the reply is parsed (``parser.parse_reply``). A failed request (after the
  client's retries) or a reply without both sentences is reported once (one ``logging`` warning and one entry
  in the clip's ``warnings``) and the clip is annotated by the offline annotator instead (source
  ``"offline"``); the run goes on. After ``max_consecutive_failures`` transport failures in a row the server
  is considered down and the remaining clips go offline without more requests (reported once).
* ``"offline"``: ``OfflineAnnotator`` on the 3D estimate ``joints3d``.
* ``"file:PATH"``: the user's annotations file (validated; clips matched by start/end). Clips the file
  lacks are annotated offline (warning).

Confidence, for every clip: ``contact_agreement`` of the clip's contacts with the 3D estimate of the clip
(the estimate's persons are also checked against the VLM's person order: when the swapped order agrees
clearly better, contacts and sentences are swapped and a warning says so). Without an estimate
(``joints3d=None``) VLM and file clips get ``UNKNOWN_CONFIDENCE`` (0.5) and a fallback clip is a neutral
sentence pair with no contacts and confidence 0.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from socialmirror.semantics.annotations import Annotations, ClipAnnotation, load_user_annotations
from socialmirror.semantics.client import OpenAICompatibleClient, VLMError
from socialmirror.semantics.offline import OfflineAnnotator, OfflineConfig, contact_agreement, \
    resolve_person_order
from socialmirror.semantics.parser import parse_reply
from socialmirror.semantics.prompt import encode_frames
from socialmirror.windows import CLIP_LENGTH, clip_ranges

log = logging.getLogger(__name__)

UNKNOWN_CONFIDENCE = 0.5
NEUTRAL_TEXT = ("a person stands near others.", "a person stands near others.")


def parse_source(source: str) -> tuple[str, str | None]:
    """``"openai"`` / ``"offline"`` / ``"file:PATH"`` -> (kind, path)."""
    s = str(source).strip()
    if s in ("openai", "offline"):
        return s, None
    if s.startswith("file:") and len(s) > 5:
        return "file", s[5:]
    raise ValueError(f"annotator source must be 'openai', 'offline' or 'file:PATH', got {source!r}")


def annotate_clips(source: str = "offline", *, clips: Sequence[tuple[int, int]] | None = None,
                   num_frames: int | None = None, frames: Any = None, joints3d: Any = None,
                   up: Sequence[float] = (0.0, -1.0, 0.0), client: OpenAICompatibleClient | None = None,
                   vlm_url: str | None = None, vlm_model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                   timeout: float = 120.0, max_retries: int = 2, clip_len: int = CLIP_LENGTH, seed: int = 0,
                   offline_config: OfflineConfig = OfflineConfig(), encode_kw: dict | None = None,
                   max_consecutive_failures: int = 2) -> Annotations:
    """Annotate every clip; see the module docstring.

    ``frames``: the crop frames of the whole video (array ``(T, H, W, 3)`` RGB ``uint8`` or a sequence of
    such frames, or JPEG bytes), or a callable ``frames(start, end)`` returning one clip's frames. Needed for
    ``"openai"``. ``joints3d``: the 3D estimate of the whole video ``(T, 2, 24, 3)`` (metres, with up direction
    ``up``). Needed for ``"offline"``; used for fallbacks and confidences otherwise.
    """
    kind, path = parse_source(source)
    j3d = None if joints3d is None else np.asarray(joints3d, dtype=np.float64)
    if j3d is not None and (j3d.ndim != 4 or j3d.shape[1:] != (2, 24, 3)):
        raise ValueError(f"joints3d must be (T, 2, 24, 3), got shape {j3d.shape}")
    if clips is None:
        if num_frames is None:
            if j3d is not None:
                num_frames = j3d.shape[0]
            elif frames is not None and not callable(frames):
                num_frames = len(frames)
            else:
                raise ValueError("give clips, num_frames, joints3d or a sequence of frames")
        clips = clip_ranges(num_frames, clip_len)
    clips = [(int(s), int(e)) for s, e in clips]
    offline = OfflineAnnotator(up=up, config=offline_config, seed=seed)

    def joints_of(s: int, e: int) -> np.ndarray | None:
        if j3d is None:
            return None
        part = j3d[s:e]
        return part if part.shape[0] > 0 else None

    def fallback(s: int, e: int, warnings: list[str]) -> ClipAnnotation:
        j = joints_of(s, e)
        if j is None:
            return ClipAnnotation(s, e, NEUTRAL_TEXT, (), "offline", 0.0,
                                  tuple(warnings) + ("no 3D estimate for this clip; neutral sentences used",))
        return offline.annotate(j, s, e, warnings=tuple(warnings))

    out: list[ClipAnnotation] = []
    if kind == "offline":
        if j3d is None:
            raise ValueError("the offline annotator needs the 3D estimate (joints3d)")
        for s, e in clips:
            out.append(fallback(s, e, []))
        return Annotations(out)

    if kind == "file":
        matched, file_warnings = load_user_annotations(path, clips)
        for w in file_warnings:
            log.warning("%s", w)
        for s, e in clips:
            ann = matched.get((s, e))
            if ann is None:
                out.append(fallback(s, e, [f"clip not in {path}; offline annotator used"]))
                continue
            j = joints_of(s, e)
            if j is not None:
                ann = ann.with_changes(confidence=contact_agreement(ann.contacts, j, config=offline_config))
            out.append(ann)
        return Annotations(out)

    # ---- the VLM ------------------------------------------------------------------------------------------
    if client is None:
        if not vlm_url or not vlm_model:
            raise ValueError("the openai annotator needs a client or both vlm_url and vlm_model")
        client = OpenAICompatibleClient(vlm_url, vlm_model, api_key_env=api_key_env, timeout=timeout,
                                        max_retries=max_retries)
    if frames is None:
        raise ValueError("the openai annotator needs the clips' crop frames (frames)")
    get = frames if callable(frames) else (lambda s, e: frames[s:e])
    ekw = dict(encode_kw or {})
    consecutive = 0
    server_down = False
    n_ok = n_fallback = 0
    for s, e in clips:
        n = e - s
        if server_down:
            out.append(fallback(s, e, ["VLM server unreachable earlier in this run; offline annotator used"]))
            n_fallback += 1
            continue
        try:
            images = encode_frames(list(get(s, e)), **ekw)
        except Exception as exc:  # noqa: BLE001 - a bad frame must not stop the run
            msg = f"clip [{s}, {e}): cannot encode its frames ({type(exc).__name__}: {exc}); offline annotator used"
            log.warning("%s", msg)
            out.append(fallback(s, e, [msg]))
            n_fallback += 1
            continue
        if not images:
            msg = f"clip [{s}, {e}): no frames to send; offline annotator used"
            log.warning("%s", msg)
            out.append(fallback(s, e, [msg]))
            n_fallback += 1
            continue
        try:
            reply = client.annotate_clip(images, accept=lambda text, n=len(images): parse_reply(text, n).ok)
        except VLMError as exc:
            consecutive += 1
            msg = f"clip [{s}, {e}): {exc}; offline annotator used"
            log.warning("%s", msg)
            out.append(fallback(s, e, [msg]))
            n_fallback += 1
            if max_consecutive_failures and consecutive >= max_consecutive_failures and (s, e) != clips[-1]:
                server_down = True
                log.warning("VLM failed on %d clips in a row; the remaining clips use the offline annotator",
                            consecutive)
            continue
        consecutive = 0
        parsed = parse_reply(reply.text, clip_len=len(images))
        if not parsed.ok:
            why = parsed.warnings[-1] if parsed.warnings else "unusable reply"
            msg = f"clip [{s}, {e}): VLM reply unusable ({why}); offline annotator used"
            log.warning("%s", msg)
            out.append(fallback(s, e, [msg]))
            n_fallback += 1
            continue
        warnings = list(parsed.warnings)
        text = (parsed.text1, parsed.text2)
        contacts = parsed.contacts
        if len(images) != n:
            warnings.append(f"{len(images)} frames sent for a clip of {n}")
        j = joints_of(s, e)
        if j is None:
            conf = UNKNOWN_CONFIDENCE
            warnings.append("no 3D estimate; confidence unknown (0.5)")
        else:
            swapped, conf = resolve_person_order(contacts, j, config=offline_config)
            if swapped:
                contacts = tuple(c.swapped() for c in contacts)
                text = (text[1], text[0])
                warnings.append("the VLM's person 1/2 are the estimate's persons 2/1; swapped")
        out.append(ClipAnnotation(s, e, text, tuple(contacts), "openai", float(conf), tuple(warnings)))
        n_ok += 1
    if n_fallback:
        log.warning("VLM annotated %d of %d clips; %d used the offline annotator", n_ok, len(clips), n_fallback)
    return Annotations(out)
