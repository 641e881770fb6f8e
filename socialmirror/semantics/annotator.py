"""Per-clip semantic annotation: the VLM (OpenAI-compatible), the offline annotator, or a user's file.

``annotate_clips(source, clips=..., frames=..., joints3d=...)`` returns ``Annotations`` with one
``ClipAnnotation`` per clip ``[start, end)`` (by default L-frame clips from ``socialmirror.windows.clip_ranges``):

* ``"openai"``: the clip's crop frames and the Table 1 prompt go to the server (``client``, e.g.
  ``vlm_client(vlm_url, vlm_model)``); the reply is parsed (``parser.parse_reply``). A failed request (after the
  client's retries) or a reply without both sentences is reported once (one ``logging`` warning and one entry
  in the clip's ``warnings``) and the clip is annotated by the offline annotator instead (source
  ``"offline"``); the run goes on. After ``max_consecutive_failures`` transport failures in a row, or one
  request that used up its whole deadline, the server is considered down and the remaining clips go offline
  without more requests (reported once).
* ``"offline"``: ``OfflineAnnotator`` on the 3D estimate ``joints3d``.
* ``"file:PATH"``: the user's annotations file (validated; clips matched by start/end). Clips the file
  lacks are annotated offline (warning).

Confidence, for every clip: ``contact_agreement`` of the clip's contacts with the 3D estimate of the clip
(the estimate's persons are also checked against the VLM's person order: when the swapped order agrees
clearly better, contacts and sentences are swapped and a warning says so). Without an estimate
(``joints3d=None``) VLM and file clips get ``UNKNOWN_CONFIDENCE`` (0.5) and a fallback clip is a neutral
sentence pair with no contacts and confidence 0. Given the detected 2D keypoints (``keypoints2d``), every
clip's confidence is then multiplied by ``image_agreement``: whether the contacts' joints meet in the image,
evidence the 3D estimate did not produce (the offline annotator's contacts come from that estimate, so their
agreement with it says little).
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from socialmirror.semantics.annotations import Annotations, ClipAnnotation, load_user_annotations
from socialmirror.semantics.client import OpenAICompatibleClient, VLMDeadlineError, VLMError
from socialmirror.semantics.offline import OfflineAnnotator, OfflineConfig, contact_agreement, image_agreement, \
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


def vlm_client(vlm_url: str | None, vlm_model: str | None, **client_kw) -> OpenAICompatibleClient:
    """The client of an OpenAI-compatible server (``OpenAICompatibleClient``'s options in ``client_kw``)."""
    if not vlm_url or not vlm_model:
        raise ValueError("the openai annotator needs both vlm_url and vlm_model")
    return OpenAICompatibleClient(vlm_url, vlm_model, **client_kw)


def annotate_clips(source: str = "offline", *, clips: Sequence[tuple[int, int]] | None = None,
                   num_frames: int | None = None, frames: Any = None, joints3d: Any = None,
                   keypoints2d: Any = None, up: Sequence[float] = (0.0, -1.0, 0.0),
                   client: OpenAICompatibleClient | None = None, clip_len: int = CLIP_LENGTH, seed: int = 0,
                   offline_config: OfflineConfig = OfflineConfig(), encode_kw: dict | None = None,
                   max_consecutive_failures: int = 2) -> Annotations:
    """Annotate every clip; see the module docstring.

    ``frames``: the crop frames of the whole video (array ``(T, H, W, 3)`` RGB ``uint8`` or a sequence of
    such frames, or JPEG bytes), or a callable ``frames(start, end)`` returning one clip's frames. Needed for
    ``"openai"``, with the ``client`` of the server. ``joints3d``: the 3D estimate of the whole video
    ``(T, 2, 24, 3)`` (metres, with up direction ``up``). Needed for ``"offline"``; used for fallbacks and
    confidences otherwise. ``keypoints2d``: the same two people's detected keypoints ``(T, 2, 24, 3)`` (u, v,
    confidence), for ``image_agreement``.
    """
    annotations = _annotate(source, clips, num_frames, frames, joints3d, up, client, clip_len, seed, offline_config,
                            encode_kw, max_consecutive_failures)
    if keypoints2d is None:
        return annotations
    kp = np.asarray(keypoints2d, dtype=np.float64)
    return Annotations([_judged_by_image(clip, kp[clip.start:clip.end]) for clip in annotations.clips])


def _judged_by_image(clip: ClipAnnotation, keypoints2d: np.ndarray) -> ClipAnnotation:
    agreement = image_agreement(clip.contacts, keypoints2d) if clip.contacts else None
    return clip if agreement is None else clip.with_changes(confidence=clip.confidence * agreement)


def _annotate(source, clips, num_frames, frames, joints3d, up, client, clip_len, seed, offline_config, encode_kw,
              max_consecutive_failures) -> Annotations:
    kind, path = parse_source(source)
    j3d = None if joints3d is None else np.asarray(joints3d, dtype=np.float64)
    if j3d is not None and (j3d.ndim != 4 or j3d.shape[1:] != (2, 24, 3)):
        raise ValueError(f"joints3d must be (T, 2, 24, 3), got shape {j3d.shape}")
    clips = _clip_list(clips, num_frames, j3d, frames, clip_len)
    annotator = _ClipAnnotator(j3d, OfflineAnnotator(up=up, config=offline_config, seed=seed), offline_config)
    if kind == "offline":
        if j3d is None:
            raise ValueError("the offline annotator needs the 3D estimate (joints3d)")
        return Annotations([annotator.fallback(s, e, []) for s, e in clips])
    if kind == "file":
        return Annotations(annotator.from_file(path, clips))
    if client is None:
        raise ValueError("the openai annotator needs a client (OpenAICompatibleClient) of the server")
    if frames is None:
        raise ValueError("the openai annotator needs the clips' crop frames (frames)")
    get = frames if callable(frames) else (lambda s, e: frames[s:e])
    return Annotations(annotator.from_vlm(client, get, clips, dict(encode_kw or {}), max_consecutive_failures))


def _clip_list(clips, num_frames: int | None, j3d: np.ndarray | None, frames: Any, clip_len: int
               ) -> list[tuple[int, int]]:
    """The clips as given, else L-frame clips over the video (its length from the estimate or the frames)."""
    if clips is None:
        if num_frames is None:
            if j3d is not None:
                num_frames = j3d.shape[0]
            elif frames is not None and not callable(frames):
                num_frames = len(frames)
            else:
                raise ValueError("give clips, num_frames, joints3d or a sequence of frames")
        clips = clip_ranges(num_frames, clip_len)
    return [(int(s), int(e)) for s, e in clips]


class _ClipAnnotator:
    """The three sources over a list of clips, with the offline annotator as every clip's fallback."""

    def __init__(self, joints3d: np.ndarray | None, offline: OfflineAnnotator, offline_config: OfflineConfig):
        self.joints3d = joints3d
        self.offline = offline
        self.offline_config = offline_config

    def joints_of(self, s: int, e: int) -> np.ndarray | None:
        if self.joints3d is None:
            return None
        part = self.joints3d[s:e]
        return part if part.shape[0] > 0 else None

    def fallback(self, s: int, e: int, warnings: list[str]) -> ClipAnnotation:
        """The offline annotator on the clip's estimate; neutral sentences without one."""
        j = self.joints_of(s, e)
        if j is None:
            return ClipAnnotation(s, e, NEUTRAL_TEXT, (), "offline", 0.0,
                                  tuple(warnings) + ("no 3D estimate for this clip; neutral sentences used",))
        return self.offline.annotate(j, s, e, warnings=tuple(warnings))

    def from_file(self, path: str, clips: list[tuple[int, int]]) -> list[ClipAnnotation]:
        matched, file_warnings = load_user_annotations(path, clips)
        for w in file_warnings:
            log.warning("%s", w)
        out = []
        for s, e in clips:
            ann = matched.get((s, e))
            if ann is None:
                out.append(self.fallback(s, e, [f"clip not in {path}; offline annotator used"]))
                continue
            j = self.joints_of(s, e)
            if j is not None:
                ann = ann.with_changes(confidence=contact_agreement(ann.contacts, j, config=self.offline_config))
            out.append(ann)
        return out

    def from_vlm(self, client: OpenAICompatibleClient, get_frames, clips: list[tuple[int, int]], encode_kw: dict,
                 max_consecutive_failures: int) -> list[ClipAnnotation]:
        """Each clip from the VLM, or from the fallback (reported once) when it cannot be; after
        ``max_consecutive_failures`` transport failures in a row the rest go offline without requests."""
        out, consecutive, server_down, n_fallback = [], 0, False, 0
        for s, e in clips:
            if server_down:
                out.append(self.fallback(s, e, ["VLM server unreachable earlier in this run; offline annotator used"]))
                n_fallback += 1
                continue
            try:
                ann = self._vlm_clip(client, get_frames, s, e, encode_kw)
                consecutive = 0
            except _ClipFailed as failed:
                log.warning("%s", failed.message)
                ann = self.fallback(s, e, [failed.message])
                n_fallback += 1
                consecutive = consecutive + 1 if failed.transport else 0 if failed.answered else consecutive
                if failed.deadline and (s, e) != clips[-1]:
                    # A server that let a whole deadline pass would cost the deadline again for every clip.
                    server_down = True
                    log.warning("VLM gave no reply within the deadline; the remaining clips use the offline "
                                "annotator (--vlm-timeout sets the deadline)")
                elif (failed.transport and max_consecutive_failures and consecutive >= max_consecutive_failures
                        and (s, e) != clips[-1]):
                    server_down = True
                    log.warning("VLM failed on %d clips in a row; the remaining clips use the offline annotator",
                                consecutive)
            out.append(ann)
        if n_fallback:
            log.warning("VLM annotated %d of %d clips; %d used the offline annotator", len(clips) - n_fallback,
                        len(clips), n_fallback)
        return out

    def _vlm_clip(self, client: OpenAICompatibleClient, get_frames, s: int, e: int, encode_kw: dict
                  ) -> ClipAnnotation:
        """One clip from the VLM, its persons put in the estimate's order; ``_ClipFailed`` says why not."""
        try:
            images = encode_frames(list(get_frames(s, e)), **encode_kw)
        except Exception as exc:  # noqa: BLE001 - a bad frame must not stop the run
            raise _ClipFailed(f"clip [{s}, {e}): cannot encode its frames ({type(exc).__name__}: {exc}); offline "
                              "annotator used") from None
        if not images:
            raise _ClipFailed(f"clip [{s}, {e}): no frames to send; offline annotator used")
        try:
            reply = client.annotate_clip(images, accept=lambda text, n=len(images): parse_reply(text, n).ok)
        except VLMError as exc:
            raise _ClipFailed(f"clip [{s}, {e}): {exc}; offline annotator used", transport=True,
                              deadline=isinstance(exc, VLMDeadlineError)) from None
        parsed = parse_reply(reply.text, clip_len=len(images))
        if not parsed.ok:
            why = parsed.warnings[-1] if parsed.warnings else "unusable reply"
            raise _ClipFailed(f"clip [{s}, {e}): VLM reply unusable ({why}); offline annotator used", answered=True)
        warnings, text, contacts = list(parsed.warnings), (parsed.text1, parsed.text2), parsed.contacts
        if len(images) != e - s:
            warnings.append(f"{len(images)} frames sent for a clip of {e - s}")
        j = self.joints_of(s, e)
        if j is None:
            conf = UNKNOWN_CONFIDENCE
            warnings.append("no 3D estimate; confidence unknown (0.5)")
        else:
            swapped, conf = resolve_person_order(contacts, j, config=self.offline_config)
            if swapped:
                contacts = tuple(c.swapped() for c in contacts)
                text = (text[1], text[0])
                warnings.append("the VLM's person 1/2 are the estimate's persons 2/1; swapped")
        return ClipAnnotation(s, e, text, tuple(contacts), "openai", float(conf), tuple(warnings))


class _ClipFailed(Exception):
    """One clip could not be annotated by the VLM: ``transport``, the request itself failed (a run of these
    means the server is down); ``answered``, the server replied, unusably."""

    def __init__(self, message: str, transport: bool = False, answered: bool = False, deadline: bool = False):
        super().__init__(message)
        self.message = message
        self.transport = transport
        self.answered = answered
        self.deadline = deadline
