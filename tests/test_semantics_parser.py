"""The reply parser (paper format, JSON form, clean-up) and the Table 1 prompt / message builder."""
from __future__ import annotations

import base64
import json
import string

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialmirror.body.skeleton import CONTACT_JOINTS
from socialmirror.semantics.annotations import Contact
from socialmirror.semantics.parser import ParsedReply, normalize_joint, parse_reply
from socialmirror.semantics.prompt import (PROMPT_VERSION, build_messages, clip_cache_key, encode_frames,
                                           prompt_text)

# Table 1's example, verbatim (curly apostrophes included).
PAPER_EXAMPLE = """[Start of sentences]

Text 1: a person dance with others holding his left hand with the other\u2019s right hand, putting his right hand on the other\u2019s waist, and his shoulder being touched.

Text 2: a person dance with other holding her right hand with the other\u2019s left hand, with her waist being embraced, placing her left hand on the other\u2019s shoulder.

[End of sentences]

[Start of joint-joint contact pair(s)]

{left_wrist, right_wrist, 11, 15}

{right_wrist, left_hip, 14, 15}

{right_shoulder, left_wrist, 9, 15}

[End of joint-joint contact pair(s)]"""


def _valid(r: ParsedReply, clip_len: int = 16) -> None:
    assert isinstance(r, ParsedReply)
    for c in r.contacts:
        assert c.joint_a in CONTACT_JOINTS and c.joint_b in CONTACT_JOINTS
        assert 0 <= c.t0 <= c.t1 <= clip_len - 1
    keys = [(c.joint_a, c.joint_b) for c in r.contacts]
    for k in set(keys):  # merged: the spans of one pair never overlap or touch
        spans = sorted((c.t0, c.t1) for c in r.contacts if (c.joint_a, c.joint_b) == k)
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            assert b0 > a1 + 1
    assert r.ok == bool(r.text1 and r.text2)
    assert all(isinstance(w, str) for w in r.warnings)


# ---- prompt ------------------------------------------------------------------------------------------------
def test_prompt_is_table1_with_generated_joint_list():
    text = prompt_text()
    assert text.startswith("Given the image sequence of two human interaction, generate 0, 1 or more")
    assert "Human has JOINTS: " + repr(list(CONTACT_JOINTS)) + "." in text
    assert "{JOINT, JOINT, TIME-STEP, TIME-STEP}" in text
    assert "use 'a person' to refer to himself in the sentence and 'others' to refer to others" in text
    assert "{right_shoulder, left_wrist, 9, 15}" in text
    assert text.rstrip().endswith("[End of an example]")
    # the prompt's own example parses to its three contacts
    example = text.split("[Start of an example]")[1]
    assert len(parse_reply(example).contacts) == 3


def test_message_builder_labels_every_frame():
    frames = np.zeros((4, 40, 60, 3), np.uint8)
    frames[:, :, :, 0] = 200
    frames[:, :, :, 1] = np.arange(4)[:, None, None] * 60
    imgs = encode_frames(frames, max_side=32)
    assert all(b[:2] == b"\xff\xd8" for b in imgs)  # JPEG
    msgs = build_messages(imgs)
    assert len(msgs) == 1 and msgs[0]["role"] == "user"
    parts = msgs[0]["content"]
    assert parts[0]["type"] == "text" and parts[0]["text"] == prompt_text()
    assert "4 frames, numbered 0 to 3" in parts[1]["text"]
    labels = [p["text"] for p in parts[2::2]]
    images = [p for p in parts[3::2]]
    assert labels == ["frame 0", "frame 1", "frame 2", "frame 3"]
    assert all(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/jpeg;base64,")
               for p in images)
    assert base64.b64decode(images[0]["image_url"]["url"].split(",", 1)[1]) == imgs[0]
    drawn = encode_frames(frames[:1], draw_labels=True)
    assert drawn[0] != imgs[0]
    # the cache key follows the image bytes, the model and the prompt version
    k = clip_cache_key(imgs, "m")
    assert k == clip_cache_key(list(imgs), "m")
    assert k != clip_cache_key(imgs, "other-model")
    assert k != clip_cache_key(imgs[::-1], "m")
    assert PROMPT_VERSION


# ---- paper format ------------------------------------------------------------------------------------------
def test_paper_example_verbatim():
    r = parse_reply(PAPER_EXAMPLE)
    assert r.ok and r.format == "paper"
    assert r.contacts == (Contact("left_wrist", "right_wrist", 11, 15), Contact("right_wrist", "left_hip", 14, 15),
                          Contact("right_shoulder", "left_wrist", 9, 15))
    assert r.text1.startswith("a person dance with others holding his left hand")
    assert r.text1.endswith("his shoulder being touched.")
    assert r.text2.startswith("a person dance with other holding her right hand")
    assert r.warnings == ()


def test_paper_format_without_markers_and_lowercase_labels():
    reply = ("text 1: a person waves at others.\ntext 2: a person waves back at others.\n"
             "{ 'Left Wrist' , \"right-wrist\" , 2 , 6 }\n")
    r = parse_reply(reply)
    assert r.ok
    assert r.text == ("a person waves at others.", "a person waves back at others.")
    assert r.contacts == (Contact("left_wrist", "right_wrist", 2, 6),)


def test_paper_format_tolerates_markdown_bullets_and_ranges():
    reply = ("Here you go:\n**Text 1:** a person hugs others.\n**Text 2:** a person hugs others too.\n\n"
             "- {left_wrist, right_shoulder, 0, 15}\n1. (right_wrist, left_shoulder, 3-12)\n"
             "neck, head, 4, 5\n")
    r = parse_reply(reply)
    assert r.ok
    assert set(r.contacts) == {Contact("left_wrist", "right_shoulder", 0, 15),
                               Contact("right_wrist", "left_shoulder", 3, 12), Contact("neck", "head", 4, 5)}


def test_sentence_on_the_next_line_and_inline_labels():
    r = parse_reply("Text 1:\na person pushes others.\nText 2:\na person is pushed by others.")
    assert r.text == ("a person pushes others.", "a person is pushed by others.")
    r = parse_reply("Text 1: a person claps. Text 2: a person claps too.")
    assert r.text == ("a person claps.", "a person claps too.")


def test_garbage_is_not_ok():
    for reply in ("", "   ", "I cannot help with that.", "{}", "[]", "null", "{{{{", "text 1:", "\x00\x01",
                  "Text 1: ...\n", '{"text1": 5}', "<think>text 1: a person sits.</think>"):
        r = parse_reply(reply)
        _valid(r)
        assert not r.ok
        assert r.warnings


def test_non_string_input_never_raises():
    for value in (None, 5, 3.5, b"text 1: a person sits.\ntext 2: a person sits.", ["x"], object()):
        r = parse_reply(value)
        _valid(r)
    assert parse_reply(b"text 1: a person sits.\ntext 2: a person stands.").ok


def test_unknown_joints_are_dropped_with_a_warning():
    reply = ("Text 1: a person touches others.\nText 2: a person is touched.\n"
             "{left_pinky, right_wrist, 2, 3}\n{left_wrist, spleen, 2, 3}\n{left_hand, neck, 1, 4}\n")
    r = parse_reply(reply)
    assert r.ok
    assert r.contacts == (Contact("left_wrist", "neck", 1, 4),)  # the hand is read as the wrist
    text = " ".join(r.warnings)
    assert "left_pinky" in text and "spleen" in text and "left_hand" in text


def test_out_of_range_frames_are_clipped_or_dropped():
    reply = ("Text 1: a person a.\nText 2: a person b.\n{left_wrist, right_wrist, -3, 4}\n"
             "{right_wrist, left_wrist, 12, 40}\n{neck, head, 20, 30}\n{head, neck, 9, 2}\n")
    r = parse_reply(reply)
    assert set(r.contacts) == {Contact("left_wrist", "right_wrist", 0, 4), Contact("right_wrist", "left_wrist", 12, 15),
                               Contact("head", "neck", 2, 9)}
    assert any("clipped" in w for w in r.warnings)
    assert any("outside the clip" in w for w in r.warnings)
    assert any("swapped" in w for w in r.warnings)
    r8 = parse_reply(reply, clip_len=8)
    assert Contact("right_wrist", "left_wrist", 7, 7) not in r8.contacts  # 12..40 lies outside 0..7
    _valid(r8, 8)


def test_duplicates_and_overlaps_are_merged():
    reply = ("Text 1: a person a.\nText 2: a person b.\n{left_wrist, right_wrist, 2, 5}\n"
             "{left_wrist, right_wrist, 2, 5}\n{left_wrist, right_wrist, 4, 8}\n{left_wrist, right_wrist, 9, 10}\n"
             "{left_wrist, right_wrist, 13, 14}\n{right_wrist, left_wrist, 3, 4}\n")
    r = parse_reply(reply)
    assert r.contacts == (Contact("left_wrist", "right_wrist", 2, 10), Contact("left_wrist", "right_wrist", 13, 14),
                          Contact("right_wrist", "left_wrist", 3, 4))
    assert any("merged" in w for w in r.warnings)


def test_person_wording_is_replaced():
    reply = ("Text 1: Person 1 holds person 2's hand while the second person smiles.\n"
             "Text 2: person 2 lets person1 hold their hand.\n")
    r = parse_reply(reply)
    assert r.ok
    assert r.text1 == "a person holds the other's hand while others smiles."
    assert r.text2 == "a person lets others hold their hand."
    assert "person 1" not in (r.text1 + r.text2).lower() and "person 2" not in (r.text1 + r.text2).lower()
    assert any("wording" in w for w in r.warnings)


def test_think_blocks_are_ignored():
    reply = "<think>maybe text 1: wrong.</think>Text 1: a person sits.\nText 2: a person stands.\n{head, head, 1, 2}"
    r = parse_reply(reply)
    assert r.text == ("a person sits.", "a person stands.")
    assert r.contacts == (Contact("head", "head", 1, 2),)


# ---- JSON form ---------------------------------------------------------------------------------------------
def test_json_form():
    obj = {"text1": "a person shakes hands with others.", "text2": "a person shakes hands with others.",
           "contacts": [["right_wrist", "right_wrist", 3, 9]]}
    r = parse_reply(json.dumps(obj))
    assert r.ok and r.format == "json"
    assert r.contacts == (Contact("right_wrist", "right_wrist", 3, 9),)


def test_json_form_fenced_with_object_contacts_and_loose_keys():
    reply = ("Sure, here it is:\n```json\n" + json.dumps({
        "Text 1": "person 1 hugs person 2.", "text_2": "a person hugs others.",
        "joint_joint_contact_pairs": [
            {"joint_a": "Left Wrist", "joint_b": "right_shoulder", "t0": 2, "t1": 30},
            {"person1": "right_wrist", "person2": "left_shoulder", "frames": [9, 4]},
            {"joint_a": "knee", "joint_b": "neck", "start": 1, "end": 2},
            "{head, head, 5, 6}"]}) + "\n```\nHope this helps.")
    r = parse_reply(reply)
    assert r.ok and r.format == "json"
    assert r.text1 == "a person hugs others."
    assert r.contacts == (Contact("left_wrist", "right_shoulder", 2, 15), Contact("right_wrist", "left_shoulder", 4, 9),
                          Contact("head", "head", 5, 6))
    assert any("knee" in w for w in r.warnings)


def test_json_text_list_and_embedded_object():
    reply = 'The answer is {"text": ["a person sits.", "a person sits too."], "contacts": []} as requested.'
    r = parse_reply(reply)
    assert r.ok and r.text == ("a person sits.", "a person sits too.") and r.contacts == ()


def test_json_without_sentences_is_not_ok():
    r = parse_reply('{"contacts": [["left_wrist", "right_wrist", 1, 2]]}')
    assert not r.ok and r.contacts == (Contact("left_wrist", "right_wrist", 1, 2),)


def test_normalize_joint():
    assert normalize_joint("Left-Wrist") == ("left_wrist", None)
    assert normalize_joint(" person 2's right shoulder ")[0] == "right_shoulder"
    assert normalize_joint("l_elbow")[0] == "left_elbow"
    assert normalize_joint("LeftKnee")[0] == "left_knee"
    assert normalize_joint("JOINT") == (None, None)
    assert normalize_joint("tail")[0] is None


# ---- fuzzing -----------------------------------------------------------------------------------------------
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_fuzz_any_text_never_raises(text):
    _valid(parse_reply(text))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes_never_raise(data):
    _valid(parse_reply(data))


_JOINT_VARIANTS = st.sampled_from(CONTACT_JOINTS).flatmap(lambda j: st.sampled_from(
    [j, j.upper(), j.replace("_", " "), j.replace("_", "-"), f"'{j}'", f'"{j}"', j.title().replace("_", " ")]))
_JUNK = st.text(alphabet=string.printable, max_size=12)


@st.composite
def _near_valid_reply(draw):
    """A reply in the paper's format with random variations; returns (reply, expected contacts or None)."""
    label = draw(st.sampled_from(["Text", "text", "TEXT", "**Text", "Sentence"]))
    sep = draw(st.sampled_from([":", ": ", ":  ", ":** "]))
    markers = draw(st.booleans())
    contacts = draw(st.lists(st.tuples(_JOINT_VARIANTS, _JOINT_VARIANTS, st.integers(-5, 25), st.integers(-5, 25)),
                             max_size=5))
    lines = []
    if markers:
        lines.append("[Start of sentences]")
    lines.append(f"{label} 1{sep}a person {draw(st.sampled_from(['waves', 'hugs others', 'dances']))}.")
    lines.append(f"{label} 2{sep}a person {draw(st.sampled_from(['waves back', 'is hugged', 'dances']))}.")
    if markers:
        lines += ["[End of sentences]", "[Start of joint-joint contact pair(s)]"]
    for a, b, t0, t1 in contacts:
        lines.append("{" + draw(st.sampled_from([", ", ",", " , "])).join([a, b, str(t0), str(t1)]) + "}")
    if markers:
        lines.append("[End of joint-joint contact pair(s)]")
    corrupt = draw(st.booleans())
    if corrupt:  # splice junk somewhere
        k = draw(st.integers(0, len(lines)))
        lines.insert(k, draw(_JUNK))
    return "\n".join(lines), contacts, corrupt


@settings(max_examples=300, deadline=None)
@given(_near_valid_reply())
def test_fuzz_near_valid_replies(case):
    reply, contacts, corrupt = case
    r = parse_reply(reply)
    _valid(r)
    if corrupt:
        return
    assert r.ok
    expected: set[tuple[str, str, int]] = set()  # (a, b, frame) covered
    for a, b, t0, t1 in contacts:
        na, nb = normalize_joint(a)[0], normalize_joint(b)[0]
        lo, hi = sorted((t0, t1))
        if hi < 0 or lo > 15:
            continue
        expected |= {(na, nb, f) for f in range(max(lo, 0), min(hi, 15) + 1)}
    got = {(c.joint_a, c.joint_b, f) for c in r.contacts for f in range(c.t0, c.t1 + 1)}
    assert got == expected


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.sampled_from(["text1", "text2", "text", "contacts", "joint_a", "joint_b",
                                                       "t0", "t1", "frames", "x"]), children, max_size=5),
                    max_leaves=20))
def test_fuzz_json_shapes_never_raise(obj):
    _valid(parse_reply(json.dumps(obj)))
    _valid(parse_reply("```json\n" + json.dumps(obj) + "\n```"))


def test_prompt_matches_the_paper_text_where_available():
    from pathlib import Path

    paper = Path(__file__).resolve().parents[1].parent / "shared" / "paper" / "socialmirror-supplementary.txt"
    if not paper.is_file():
        import pytest
        pytest.skip("the paper's text is not next to the project")
    src = paper.read_text(encoding="utf-8")
    a = src.index("Given the image sequence of two human interaction")
    b = src.index("[End of an example]") + len("[End of an example]")
    lines = [line.strip() for line in src[a:b].splitlines() if line.strip()]
    assert lines == [line.strip() for line in prompt_text().splitlines() if line.strip()]
