"""The VLM Annotator prompt (supplementary Table 1) and the OpenAI chat message built from it.

``prompt_text()`` is Table 1's prompting example verbatim, with the background joint list generated from
``CONTACT_JOINTS`` (it prints exactly as in the paper: ``Human has JOINTS: ['pelvis', ...]``).

Table 1 does not say how the model should know a frame's number, so the message adds one sentence after the
prompt (``FRAME_NOTE``) and labels every frame with a text part ``"frame k"`` placed right before its image,
``k`` clip-relative (0..15). Text labels were chosen over numbers drawn on the pixels because they cost no
pixels, survive the server's resizing and are read reliably by every chat model; ``draw_labels=True`` also
draws the number into the top-left corner of each image for models that read images better than
interleaved text. Both the note and the labelling are part of ``PROMPT_VERSION`` (the cache key changes when
they do).

Frames are RGB ``uint8`` arrays ``(H, W, 3)`` (as ``socialmirror.perception`` reads them; ``bgr=True`` for
OpenCV order) or already-encoded JPEG/PNG ``bytes``; they are sent as ``data:image/jpeg;base64,...`` URLs in
``image_url`` parts of one user message.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Sequence

import numpy as np

from socialmirror.body.skeleton import CONTACT_JOINTS

PROMPT_VERSION = "table1-v1"

_PROMPT_TEMPLATE = """\
Given the image sequence of two human interaction, generate 0, 1 or more joint-joint contact pair(s) according to the following background information, rules, and examples. Joint-joint contact pair should exactly reflect the human interaction shown in the image sequence.

[Start of background Information]

Human has JOINTS: {joints}.

[End of background Information]

[Start of rules]

1.Each joint-joint pair should be formatted into {{JOINT, JOINT, TIME-STEP, TIME-STEP}}. JOINT should be replaced by JOINT in the background information. IMPORTANT: The first JOINT belongs to person 1, and the second JOINT belongs to person 2. Each joint-joint pair represents a contact of a joint of person 1 and a joint of person 2. The first TIME-STEP is the start frame number of contact, and the second TIME-STEP is the end frame number of contact.

2.Use one sentence to describe what action person 1 do and one sentence to describe what action person 2 do according to the image sequence. IMPORTANT: the sentence starts from 'text 1:' describing the action of person 1 from the perspective of person 1 and the sentence starts from 'text 2:' describing the action of person 2 from the perspective of person 2. Sentences should NOT contain words like 'person 1' or 'person 2', use 'a person' to refer to himself in the sentence and 'others' to refer to others. IMPORTANT: the sentence should be align with the joint-joint contact pair. IMPORTANT: the order of person 1 and person 2 should be the same in different joint-joint contact pair of the same image sequence.

3.IMPORTANT: Do NOT add explanations for the joint-joint contact pair.

[End of rules]

[Start of an example]

[Start of sentences]

Text 1: a person dance with others holding his left hand with the other\u2019s right hand, putting his right hand on the other\u2019s waist, and his shoulder being touched.

Text 2: a person dance with other holding her right hand with the other\u2019s left hand, with her waist being embraced, placing her left hand on the other\u2019s shoulder.

[End of sentences]

[Start of joint-joint contact pair(s)]

{{left_wrist, right_wrist, 11, 15}}

{{right_wrist, left_hip, 14, 15}}

{{right_shoulder, left_wrist, 9, 15}}

[End of joint-joint contact pair(s)]

[End of an example]"""

# What the message adds to Table 1: how frames are numbered (Table 1 leaves it implicit).
FRAME_NOTE = ("The image sequence has {n} frames, numbered 0 to {last}; each image follows the text "
              "'frame k' that gives its frame number k. TIME-STEP is this frame number.")

DEFAULT_MAX_SIDE = 512
DEFAULT_JPEG_QUALITY = 85


def prompt_text(joints: Sequence[str] = CONTACT_JOINTS) -> str:
    """Table 1's prompt, verbatim, with the background joint list generated from ``joints``."""
    return _PROMPT_TEMPLATE.format(joints=repr([str(j) for j in joints]))


def prompt_hash(joints: Sequence[str] = CONTACT_JOINTS) -> str:
    """Short content hash of the prompt, note and version (for cache keys)."""
    h = hashlib.sha256()
    for part in (PROMPT_VERSION, prompt_text(joints), FRAME_NOTE):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def encode_frame(frame, *, bgr: bool = False, max_side: int | None = DEFAULT_MAX_SIDE,
                 quality: int = DEFAULT_JPEG_QUALITY, label: str | None = None) -> bytes:
    """JPEG bytes of one frame (RGB ``uint8`` array unless ``bgr``; ``bytes`` pass through unchanged
    unless a label must be drawn). Images larger than ``max_side`` are shrunk keeping their aspect ratio."""
    import cv2

    if isinstance(frame, (bytes, bytearray, memoryview)):
        if label is None:
            return bytes(frame)
        decoded = cv2.imdecode(np.frombuffer(bytes(frame), np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError("cannot decode the given image bytes")
        img = decoded
    else:
        arr = np.asarray(frame)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"a frame must be (H, W, 3) or (H, W, 4), got shape {arr.shape}")
        arr = arr[:, :, :3]
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating) and float(np.nanmax(arr, initial=0.0)) <= 1.0:
                arr = arr * 255.0
            arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
        img = np.ascontiguousarray(arr if bgr else arr[:, :, ::-1])
    h, w = img.shape[:2]
    if max_side and max(h, w) > max_side:
        s = max_side / float(max(h, w))
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if label is not None:
        img = img.copy()
        scale = max(0.4, min(img.shape[:2]) / 300.0)
        thick = max(1, int(round(2 * scale)))
        org = (int(6 * scale), int(26 * scale))
        cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def encode_frames(frames, *, bgr: bool = False, max_side: int | None = DEFAULT_MAX_SIDE,
                  quality: int = DEFAULT_JPEG_QUALITY, draw_labels: bool = False,
                  frame_numbers: Sequence[int] | None = None) -> list[bytes]:
    """JPEG bytes of each frame of a clip (see ``encode_frame``)."""
    frames = list(frames)
    numbers = list(range(len(frames))) if frame_numbers is None else [int(k) for k in frame_numbers]
    if len(numbers) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(numbers)} frame numbers")
    return [encode_frame(f, bgr=bgr, max_side=max_side, quality=quality,
                         label=str(k) if draw_labels else None) for f, k in zip(frames, numbers)]


def build_messages(images: Sequence[bytes], *, frame_numbers: Sequence[int] | None = None,
                   joints: Sequence[str] = CONTACT_JOINTS, mime: str = "image/jpeg") -> list[dict]:
    """OpenAI chat ``messages``: one user message whose content is the prompt text, the frame note, then
    ``"frame k"`` and the ``image_url`` part of each frame (``data:image/jpeg;base64,...``)."""
    images = list(images)
    numbers = list(range(len(images))) if frame_numbers is None else [int(k) for k in frame_numbers]
    if len(numbers) != len(images):
        raise ValueError(f"{len(images)} images but {len(numbers)} frame numbers")
    n = len(images)
    content: list[dict] = [
        {"type": "text", "text": prompt_text(joints)},
        {"type": "text", "text": FRAME_NOTE.format(n=n, last=max(n - 1, 0))},
    ]
    for k, img in zip(numbers, images):
        b64 = base64.b64encode(bytes(img)).decode("ascii")
        content.append({"type": "text", "text": f"frame {k}"})
        content.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{b64}"}})
    return [{"role": "user", "content": content}]


def clip_cache_key(images: Sequence[bytes], model: str, *, frame_numbers: Sequence[int] | None = None,
                   joints: Sequence[str] = CONTACT_JOINTS, extra: str = "") -> str:
    """Hash of the clip's image bytes, the prompt (version and text) and the model name."""
    h = hashlib.sha256()
    h.update(f"{PROMPT_VERSION}\0{prompt_hash(joints)}\0{model}\0{extra}\0".encode("utf-8"))
    images = list(images)
    numbers = list(range(len(images))) if frame_numbers is None else [int(k) for k in frame_numbers]
    for k, img in zip(numbers, images):
        h.update(f"{k}:{len(img)}:".encode("ascii"))
        h.update(hashlib.sha256(bytes(img)).digest())
    return h.hexdigest()
