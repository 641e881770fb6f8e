"""A strict parser for the VLM Annotator's reply (supplementary Table 1), and for an equivalent JSON form.

``parse_reply(text, clip_len=L)`` never raises, whatever ``text`` is: problems become ``warnings`` and a reply
that does not give both sentences comes back with ``ok=False`` (the annotator then falls back to the offline
annotator). "Strict" means nothing is guessed: contacts must name joints of the 19-joint list (after the
normalisation below) and carry frame numbers; everything that cannot be read is dropped with a warning.

Paper format (what Table 1's example shows)::

    [Start of sentences]                     <- section markers are optional
    Text 1: a person ...                     <- "text 1:" in any case; "sentence 1:" also accepted
    Text 2: a person ...
    [End of sentences]
    [Start of joint-joint contact pair(s)]
    {left_wrist, right_wrist, 11, 15}        <- {JOINT of person 1, JOINT of person 2, TIME-STEP, TIME-STEP}
    [End of joint-joint contact pair(s)]

Tolerated: markdown bold/code marks, quotes around names ('left_wrist'), spaces or hyphens in names
("Left Wrist" -> left_wrist), "person 1's left_wrist" prefixes, bullets/numbering, a range as one field
("11-15"), ``[...]``/``(...)`` instead of braces when the group is alone on its line, a bare
``left_wrist, right_wrist, 11, 15`` line, ``<think>...</think>`` blocks (removed first). A few aliases map to
the list with a warning (hand/palm -> wrist, toe -> foot, clavicle -> collar, waist -> pelvis).

JSON form (also inside a fenced ```json block, or embedded in prose)::

    {"text1": "...", "text2": "...", "contacts": [["left_wrist", "right_wrist", 11, 15], ...]}

Keys are matched loosely (``text_1``, ``"Text 1"``, ``sentence1``; ``"text": [s1, s2]``; any key containing
"contact" or "pair" for the list) and contacts may be objects
(``{"joint_a": .., "joint_b": .., "t0": .., "t1": ..}``, also ``person1``/``person2``, ``start``/``end``,
``frames: [t0, t1]``) or strings in the paper's brace form.

Clean-up: unknown joints are dropped (warning); frames are clipped to ``[0, clip_len - 1]`` (a range lying
entirely outside the clip is dropped); ``t0 > t1`` is swapped; duplicates and overlapping or adjacent ranges
of the same pair are merged; "person 1"/"person 2" wording in a sentence becomes "a person" (the speaker) and
"others" (the other one), "...'s" becoming "their"/"the other's", as Table 1 asks.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from socialmirror.body.skeleton import CONTACT_JOINTS
from socialmirror.semantics.annotations import Contact
from socialmirror.windows import CLIP_LENGTH

MAX_REPLY_CHARS = 60_000
MAX_SENTENCE_CHARS = 600
MAX_CONTACTS = 64
MAX_WARNINGS = 20
_MAX_JSON_ATTEMPTS = 24


@dataclass(frozen=True)
class ParsedReply:
    """What a reply says: two sentences (``None`` where missing), contacts, warnings and ``ok``."""

    text1: str | None
    text2: str | None
    contacts: tuple[Contact, ...] = ()
    warnings: tuple[str, ...] = ()
    ok: bool = False
    format: str = "none"  # "paper" | "json" | "none"

    @property
    def text(self) -> tuple[str, str] | None:
        if self.text1 and self.text2:
            return (self.text1, self.text2)
        return None

    def _score(self) -> tuple:
        return (self.ok, int(bool(self.text1)) + int(bool(self.text2)), len(self.contacts))


# ---- joint names -------------------------------------------------------------------------------------------
_ALIASES = {
    "left_hand": "left_wrist", "right_hand": "right_wrist", "left_palm": "left_wrist",
    "right_palm": "right_wrist", "left_fingers": "left_wrist", "right_fingers": "right_wrist",
    "left_toe": "left_foot", "right_toe": "right_foot", "left_toes": "left_foot", "right_toes": "right_foot",
    "left_clavicle": "left_collar", "right_clavicle": "right_collar", "left_collarbone": "left_collar",
    "right_collarbone": "right_collar", "waist": "pelvis", "hips": "pelvis",
}
_PLACEHOLDERS = {"joint", "time_step", "timestep", "joint1", "joint2", "time_step1", "time_step2", "..."}
_PERSON_PREFIX = re.compile(r"^(?:the\s+)?(?:person|human|p|people)[\s_\-]*(?:[12]|one|two)\s*(?:'s\b)?[\s_\-:.']*")


def normalize_joint(name: Any, joints: Sequence[str] = CONTACT_JOINTS) -> tuple[str | None, str | None]:
    """``(canonical name or None, note)``: lower case, spaces/hyphens/dots to underscores, person prefixes
    removed, ``l_``/``r_`` expanded, a few aliases mapped (the note says so)."""
    if not isinstance(name, str):
        if isinstance(name, (int, float)) and not isinstance(name, bool):
            return None, f"unknown joint {name!r} dropped"
        return None, "contact without a joint name dropped"
    s = name.strip().strip("'\"`*_ \t").lower()
    s = _PERSON_PREFIX.sub("", s)
    s = re.sub(r"[\s\-.]+", "_", s)
    s = re.sub(r"_+", "_", s).strip("_")
    s = re.sub(r"^l_", "left_", s)
    s = re.sub(r"^r_", "right_", s)
    s = re.sub(r"^(left|right)(?=[a-z])", r"\1_", s)
    jset = set(joints)
    if s in jset:
        return s, None
    if s in _PLACEHOLDERS or not s:
        return None, None
    if s in _ALIASES and _ALIASES[s] in jset:
        return _ALIASES[s], f"joint {name.strip()!r} read as {_ALIASES[s]!r}"
    shown = name.strip()
    if len(shown) > 40:
        shown = shown[:40] + "..."
    return None, f"unknown joint {shown!r} dropped"


# ---- sentences -----------------------------------------------------------------------------------------------
_PERSON_WORD = re.compile(
    r"\b(?:(the)\s+)?(?:(?:person|human|people|individual|subject)[ \t_\-]*(1|2|one|two)\b"
    r"|(first|second)\s+(?:person|individual|subject)\b)(\s*(?:'s|\u2019s)\b)?",
    re.IGNORECASE)
_NUM = {"1": 1, "one": 1, "first": 1, "2": 2, "two": 2, "second": 2}


def clean_sentence(sentence: str, speaker: int) -> tuple[str, bool]:
    """Replace "person 1"/"person 2" wording (``speaker`` is 1 or 2); returns (sentence, changed)."""
    changed = False

    def repl(m: re.Match) -> str:
        nonlocal changed
        changed = True
        who = _NUM[(m.group(2) or m.group(3)).lower()]
        poss = bool(m.group(4))
        if who == speaker:
            return "their" if poss else "a person"
        return "the other's" if poss else "others"

    out = _PERSON_WORD.sub(repl, sentence)
    out = re.sub(r"\s+", " ", out).strip()
    return out, changed


def _finish_sentence(raw: str | None, speaker: int, warnings: list[str]) -> str | None:
    if raw is None:
        return None
    s = re.sub(r"\s+", " ", raw).strip()
    s = s.strip("\"'`*_ ").strip()
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1].strip()
    if not re.search(r"[A-Za-z]", s):
        return None
    if len(s) > MAX_SENTENCE_CHARS:
        s = s[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0]
        warnings.append(f"text {speaker} truncated to {len(s)} characters")
    s, changed = clean_sentence(s, speaker)
    if changed:
        warnings.append(f"text {speaker}: 'person 1/2' wording replaced by 'a person'/'others'")
    return s or None


# ---- contacts ------------------------------------------------------------------------------------------------
_RANGE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:-|\u2013|\u2014|to|\.\.|~|:|through)\s*(-?\d+(?:\.\d+)?)", re.I)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return int(round(value))
    if isinstance(value, str):
        m = _NUMBER.search(value)
        if m:
            try:
                f = float(m.group(0))
            except ValueError:  # pragma: no cover - the regex only matches numbers
                return None
            if f != f or abs(f) > 1e9:
                return None
            return int(round(f))
    return None


@dataclass
class _Raw:
    a: Any
    b: Any
    t0: Any
    t1: Any
    shown: str


def _split_joint_words(part: str, joints: Sequence[str]) -> tuple[str, str] | None:
    """'left wrist right wrist' -> ('left wrist', 'right wrist') when both halves are joint names."""
    words = part.split()
    for k in range(1, len(words)):
        a, b = " ".join(words[:k]), " ".join(words[k:])
        if normalize_joint(a, joints)[0] and normalize_joint(b, joints)[0]:
            return a, b
    return None


def _fields_to_raw(content: str, joints: Sequence[str], warnings: list[str]) -> _Raw | None:
    shown = content.strip()
    if len(shown) > 60:
        shown = shown[:60] + "..."
    shown = "{" + shown + "}"
    fields = [f.strip().strip("'\"` ") for f in re.split(r"[,;|]", content)]
    fields = [f for f in fields if f]
    if len(fields) == 1:  # space separated: "left_wrist right_wrist 11 15"
        m = re.match(r"^(.*?)\s+(-?\d+)\s+(-?\d+)$", fields[0])
        if m:
            pair = _split_joint_words(m.group(1), joints)
            if pair:
                return _Raw(pair[0], pair[1], m.group(2), m.group(3), shown)
        warnings.append(f"cannot read contact {shown}; dropped")
        return None
    if len(fields) == 4:
        return _Raw(fields[0], fields[1], fields[2], fields[3], shown)
    if len(fields) == 3:
        m = _RANGE.search(fields[2])
        if m:
            return _Raw(fields[0], fields[1], m.group(1), m.group(2), shown)
        if _NUMBER.search(fields[2]):
            return _Raw(fields[0], fields[1], fields[2], fields[2], shown)
    if len(fields) == 2:
        return _Raw(fields[0], fields[1], None, None, shown)
    if len(fields) > 4:
        nums = [f for f in fields[2:] if _NUMBER.fullmatch(f.strip())]
        if len(nums) >= 2:
            warnings.append(f"contact {shown} has {len(fields)} fields; the first four were used")
            return _Raw(fields[0], fields[1], fields[2], fields[3], shown)
    warnings.append(f"cannot read contact {shown}; dropped")
    return None


def _is_placeholder_group(content: str) -> bool:
    norm = re.sub(r"[\s'\"`]", "", content.lower())
    return norm.startswith("joint,joint") or "time-step" in norm or norm in {"", "s"}


def _finalize_contacts(raws: Iterable[_Raw], clip_len: int, joints: Sequence[str],
                       warnings: list[str]) -> tuple[Contact, ...]:
    last = max(int(clip_len), 1) - 1
    intervals: dict[tuple[str, str], list[list[int]]] = {}
    order: list[tuple[str, str]] = []
    clipped = 0
    for r in raws:
        a, note_a = normalize_joint(r.a, joints)
        b, note_b = normalize_joint(r.b, joints)
        for note in (note_a, note_b):
            if note:
                warnings.append(note)
        if a is None or b is None:  # unknown (already warned) or a placeholder echoed from the rules
            continue
        if r.t0 is None and r.t1 is None:
            t0, t1 = 0, last
            warnings.append(f"contact {r.shown} has no time steps; the whole clip was assumed")
        else:
            t0, t1 = _to_int(r.t0), _to_int(r.t1)
            if t0 is None and t1 is None:
                warnings.append(f"contact {r.shown} has no readable time steps; dropped")
                continue
            if t0 is None:
                t0 = t1
            if t1 is None:
                t1 = t0
        if t0 > t1:
            t0, t1 = t1, t0
            warnings.append(f"contact {r.shown}: time steps swapped (start after end)")
        if t1 < 0 or t0 > last:
            warnings.append(f"contact {r.shown}: frames {t0}..{t1} lie outside the clip (0..{last}); dropped")
            continue
        if t0 < 0 or t1 > last:
            clipped += 1
            t0, t1 = max(t0, 0), min(t1, last)
        key = (a, b)
        if key not in intervals:
            intervals[key] = []
            order.append(key)
        intervals[key].append([t0, t1])
    if clipped:
        warnings.append(f"{clipped} contact(s) clipped to the clip's frames 0..{last}")
    out: list[Contact] = []
    merged = 0
    for key in order:
        spans = sorted(intervals[key])
        cur = spans[0][:]
        for s in spans[1:]:
            if s[0] <= cur[1] + 1:
                cur[1] = max(cur[1], s[1])
                merged += 1
            else:
                out.append(Contact(key[0], key[1], cur[0], cur[1]))
                cur = s[:]
        out.append(Contact(key[0], key[1], cur[0], cur[1]))
    if merged:
        warnings.append(f"{merged} duplicate or overlapping contact(s) merged")
    if len(out) > MAX_CONTACTS:
        warnings.append(f"{len(out)} contacts; only the first {MAX_CONTACTS} kept")
        out = out[:MAX_CONTACTS]
    return tuple(out)


# ---- paper format ------------------------------------------------------------------------------------------
_LABEL = re.compile(
    r"\b(?:text|sentence|description)[ \t_\-]*(1|2|one|two)\b[ \t*\"'`)\]]*[:\uff1a=]"
    r"|^[ \t>*\-#\"'`]*(?:person|human)[ \t_\-]*(1|2)[ \t*\"'`)\]]*[:\uff1a]",
    re.IGNORECASE | re.MULTILINE)
_SENTENCE_STOP = re.compile(r"\n[ \t]*\n|\n[ \t]*[\[{(]|\{|\[\s*(?:start|end)\s+of\b|\n[ \t]*```", re.I)
_BRACE_GROUP = re.compile(r"\{([^{}\n]{0,300})\}")
_LINE_GROUP = re.compile(r"^[ \t]*(?:[-*\u2022]|\d+[.)])?[ \t]*[\[(]([^\[\]()\n]{0,300})[\])][ \t]*[,;.]?[ \t]*$",
                         re.MULTILINE)
_BARE_LINE = re.compile(
    r"^[ \t]*(?:[-*\u2022]|\d+[.)])?[ \t]*([A-Za-z][A-Za-z_ \-']{1,40}),[ \t]*([A-Za-z][A-Za-z_ \-']{1,40}),"
    r"[ \t]*(-?\d+)[ \t]*,[ \t]*(-?\d+)[ \t]*[,;.]?[ \t]*$", re.MULTILINE)


def _parse_paper(text: str, clip_len: int, joints: Sequence[str]) -> ParsedReply:
    warnings: list[str] = []
    labels = []
    for m in _LABEL.finditer(text):
        idx = _NUM[(m.group(1) or m.group(2)).lower()]
        labels.append((m.start(), m.end(), idx))
    sentences: dict[int, str] = {}
    for i, (s, e, idx) in enumerate(labels):
        end = labels[i + 1][0] if i + 1 < len(labels) else len(text)
        segment = text[e:end].lstrip()
        stop = _SENTENCE_STOP.search(segment)
        if stop:
            segment = segment[:stop.start()]
        sent = _finish_sentence(segment, idx, warnings)
        if sent is None:
            continue
        if idx in sentences:
            if sent != sentences[idx]:
                warnings.append(f"text {idx} given more than once; the first was kept")
            continue
        sentences[idx] = sent

    raws: list[_Raw] = []
    spans: list[tuple[int, int]] = []
    for m in _BRACE_GROUP.finditer(text):
        spans.append(m.span())
        content = m.group(1)
        if _is_placeholder_group(content) or not re.search(r"[A-Za-z]", content):
            continue
        r = _fields_to_raw(content, joints, warnings)
        if r is not None:
            raws.append(r)
    for m in _LINE_GROUP.finditer(text):
        if any(a <= m.start(1) < b for a, b in spans):
            continue
        content = m.group(1)
        if "," not in content or _is_placeholder_group(content) or re.match(r"\s*(start|end)\s+of\b", content, re.I):
            continue
        r = _fields_to_raw(content, joints, warnings)
        if r is not None:
            raws.append(r)
    for m in _BARE_LINE.finditer(text):
        if _LABEL.match(m.group(0).strip()):
            continue
        a, b = m.group(1), m.group(2)
        if normalize_joint(a, joints)[0] is None and normalize_joint(b, joints)[0] is None:
            continue
        raws.append(_Raw(a, b, m.group(3), m.group(4), f"{{{a}, {b}, {m.group(3)}, {m.group(4)}}}"))
    contacts = _finalize_contacts(raws, clip_len, joints, warnings)
    t1, t2 = sentences.get(1), sentences.get(2)
    ok = bool(t1 and t2)
    if not ok:
        missing = [f"text {k}" for k in (1, 2) if not sentences.get(k)]
        warnings.append(f"reply lacks {' and '.join(missing)}")
    fmt = "paper" if (labels or raws) else "none"
    return ParsedReply(t1, t2, contacts, tuple(warnings), ok, fmt)


# ---- JSON form ---------------------------------------------------------------------------------------------
def _nkey(k: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(k).lower())


_T1_KEYS = {"text1", "sentence1", "description1", "person1", "person1text", "textperson1", "p1", "texta",
            "person1sentence", "person1description", "action1", "person1action"}
_T2_KEYS = {"text2", "sentence2", "description2", "person2", "person2text", "textperson2", "p2", "textb",
            "person2sentence", "person2description", "action2", "person2action"}
_TEXTS_KEYS = {"text", "texts", "sentences", "sentence", "descriptions", "description"}
_A_KEYS = ("jointa", "joint1", "a", "person1", "person1joint", "jointperson1", "p1", "p1joint", "first",
           "firstjoint", "joint1person1", "source", "from_joint")
_B_KEYS = ("jointb", "joint2", "b", "person2", "person2joint", "jointperson2", "p2", "p2joint", "second",
           "secondjoint", "joint2person2", "target", "to_joint")
_T0_KEYS = ("t0", "start", "startframe", "from", "begin", "timestep1", "starttimestep", "starttime",
            "firstframe", "startstep", "tstart")
_T1T_KEYS = ("t1", "end", "endframe", "to", "stop", "timestep2", "endtimestep", "endtime", "lastframe",
             "endstep", "tend")
_RANGE_KEYS = ("frames", "range", "timesteps", "time", "timestep", "span", "interval")


def _pick(d: dict, keys: Sequence[str]) -> Any:
    for k in keys:
        if k in d:
            return d[k]
    return None


def _json_contact(item: Any, joints: Sequence[str], warnings: list[str]) -> _Raw | None:
    shown = str(item)
    if len(shown) > 60:
        shown = shown[:60] + "..."
    if isinstance(item, str):
        content = item.strip().strip("{}[]() ")
        return _fields_to_raw(content, joints, warnings)
    if isinstance(item, (list, tuple)):
        vals = list(item)
        if len(vals) == 4:
            return _Raw(vals[0], vals[1], vals[2], vals[3], shown)
        if len(vals) == 3:
            third = vals[2]
            if isinstance(third, (list, tuple)) and len(third) == 2:
                return _Raw(vals[0], vals[1], third[0], third[1], shown)
            if isinstance(third, str) and _RANGE.search(third):
                m = _RANGE.search(third)
                return _Raw(vals[0], vals[1], m.group(1), m.group(2), shown)
            return _Raw(vals[0], vals[1], third, third, shown)
        if len(vals) == 2:
            return _Raw(vals[0], vals[1], None, None, shown)
        warnings.append(f"cannot read contact {shown}; dropped")
        return None
    if isinstance(item, dict):
        d = {_nkey(k): v for k, v in item.items()}
        a, b = _pick(d, [_nkey(k) for k in _A_KEYS]), _pick(d, [_nkey(k) for k in _B_KEYS])
        t0, t1 = _pick(d, _T0_KEYS), _pick(d, _T1T_KEYS)
        if t0 is None and t1 is None:
            rng = _pick(d, _RANGE_KEYS)
            if isinstance(rng, (list, tuple)) and len(rng) >= 1:
                t0, t1 = rng[0], rng[-1]
            elif isinstance(rng, str):
                m = _RANGE.search(rng)
                t0, t1 = (m.group(1), m.group(2)) if m else (rng, rng)
            elif rng is not None:
                t0 = t1 = rng
        if a is None or b is None:
            joints_val = _pick(d, ("joints", "pair", "jointpair"))
            if isinstance(joints_val, (list, tuple)) and len(joints_val) == 2:
                a, b = joints_val
        if a is None or b is None:
            warnings.append(f"cannot read contact {shown}; dropped")
            return None
        return _Raw(a, b, t0, t1, shown)
    warnings.append(f"cannot read contact {shown}; dropped")
    return None


def _parse_json_obj(obj: Any, clip_len: int, joints: Sequence[str]) -> ParsedReply | None:
    """A ParsedReply from a decoded JSON value, or None when it does not look like an annotation."""
    if isinstance(obj, list):
        dicts = [x for x in obj if isinstance(x, dict)]
        if len(dicts) != 1:
            return None
        obj = dicts[0]
    if not isinstance(obj, dict):
        return None
    d: dict[str, Any] = {}
    for k, v in obj.items():
        d.setdefault(_nkey(k), v)
    # one level of wrapping: {"annotation": {...}} / {"result": {...}}
    if not any(k in d for k in _T1_KEYS | _T2_KEYS | _TEXTS_KEYS) and not any(
            "contact" in k or "pair" in k for k in d):
        inner = [v for v in d.values() if isinstance(v, dict)]
        if len(inner) == 1:
            return _parse_json_obj(inner[0], clip_len, joints)
        return None
    warnings: list[str] = []
    raw1, raw2 = _pick(d, sorted(_T1_KEYS)), _pick(d, sorted(_T2_KEYS))
    if raw1 is None and raw2 is None:
        texts = _pick(d, sorted(_TEXTS_KEYS))
        if isinstance(texts, (list, tuple)) and len(texts) >= 2:
            raw1, raw2 = texts[0], texts[1]
            if len(texts) > 2:
                warnings.append(f"{len(texts)} sentences given; the first two were used")
        elif isinstance(texts, dict):
            td = {_nkey(k): v for k, v in texts.items()}
            raw1 = _pick(td, ["1", "text1", "person1", "p1", "a", "first"])
            raw2 = _pick(td, ["2", "text2", "person2", "p2", "b", "second"])
    s1 = _finish_sentence(raw1, 1, warnings) if isinstance(raw1, str) else None
    s2 = _finish_sentence(raw2, 2, warnings) if isinstance(raw2, str) else None
    raws: list[_Raw] = []
    ckeys = [k for k in d if "contact" in k or "pair" in k]
    for k in ckeys:
        val = d[k]
        if isinstance(val, dict):
            val = [val]
        if isinstance(val, str):
            val = [m.group(1) for m in _BRACE_GROUP.finditer(val)] or ([val] if val.strip() else [])
        if not isinstance(val, (list, tuple)):
            warnings.append(f"'{k}' is not a list; ignored")
            continue
        if len(val) == 4 and isinstance(val[0], str) and not isinstance(val[2], (list, tuple, dict)) \
                and _to_int(val[2]) is not None:
            val = [val]  # a single contact given flat
        for item in list(val)[: MAX_CONTACTS * 4]:
            r = _json_contact(item, joints, warnings)
            if r is not None:
                raws.append(r)
        break
    contacts = _finalize_contacts(raws, clip_len, joints, warnings)
    ok = bool(s1 and s2)
    if not ok:
        missing = [f"text {k}" for k, s in ((1, s1), (2, s2)) if not s]
        warnings.append(f"JSON reply lacks {' and '.join(missing)}")
    return ParsedReply(s1, s2, contacts, tuple(warnings), ok, "json")


_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript|js)?[ \t]*\n?(.*?)```", re.DOTALL)


def _json_candidates(text: str) -> list[Any]:
    found: list[Any] = []
    for m in _FENCE.finditer(text):
        body = m.group(1).strip()
        if body[:1] in "{[":
            try:
                found.append(json.loads(body))
            except (ValueError, RecursionError):
                pass
    if '"' not in text:
        return found
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            found.append(json.loads(stripped))
            return found
        except (ValueError, RecursionError):
            pass
    decoder = json.JSONDecoder()
    attempts = 0
    pos = text.find("{")
    while pos != -1 and attempts < _MAX_JSON_ATTEMPTS:
        attempts += 1
        try:
            obj, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            pos = text.find("{", pos + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        pos = text.find("{", end)
    return found


# ---- entry point -------------------------------------------------------------------------------------------
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ",
                            "\uff1a": ":", "\uff5b": "{", "\uff5d": "}", "\uff0c": ",", "\u200b": "",
                            "\r": "\n", "\t": " "})


def parse_reply(text: Any, clip_len: int = CLIP_LENGTH, joints: Sequence[str] = CONTACT_JOINTS) -> ParsedReply:
    """Parse a VLM reply (paper format or JSON form). Never raises; see the module docstring."""
    try:
        r = _parse_reply(text, clip_len, joints)
        if len(r.warnings) > MAX_WARNINGS:
            extra = len(r.warnings) - MAX_WARNINGS
            r = ParsedReply(r.text1, r.text2, r.contacts, r.warnings[:MAX_WARNINGS] + (f"... and {extra} more",),
                            r.ok, r.format)
        return r
    except Exception as exc:  # never let a reply crash a run
        return ParsedReply(None, None, (), (f"parser error ({type(exc).__name__}); reply ignored",), False, "none")


def _parse_reply(text: Any, clip_len: int, joints: Sequence[str]) -> ParsedReply:
    pre: list[str] = []
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return ParsedReply(None, None, (), (f"reply is {type(text).__name__}, not text",), False, "none")
    try:
        clip_len = int(clip_len)
    except (TypeError, ValueError):
        clip_len = CLIP_LENGTH
    clip_len = max(clip_len, 1)
    if len(text) > MAX_REPLY_CHARS:
        pre.append(f"reply of {len(text)} characters truncated to {MAX_REPLY_CHARS}")
        text = text[:MAX_REPLY_CHARS]
    text = text.replace("\x00", "").translate(_TRANSLATE)
    text = _THINK.sub(" ", text)
    if not text.strip():
        return ParsedReply(None, None, (), tuple(pre) + ("empty reply",), False, "none")

    best_json: ParsedReply | None = None
    for obj in _json_candidates(text):
        r = _parse_json_obj(obj, clip_len, joints)
        if r is not None and (best_json is None or r._score() > best_json._score()):
            best_json = r
    if best_json is not None and best_json.ok:
        return _prefix(best_json, pre)
    clean = re.sub(r"\*\*|`", "", text)
    paper = _parse_paper(clean, clip_len, joints)
    if best_json is not None and best_json._score() >= paper._score():
        return _prefix(best_json, pre)
    return _prefix(paper, pre)


def _prefix(r: ParsedReply, pre: list[str]) -> ParsedReply:
    if not pre:
        return r
    return ParsedReply(r.text1, r.text2, r.contacts, tuple(pre) + r.warnings, r.ok, r.format)
