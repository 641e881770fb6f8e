"""The annotations file: schema, atomic round trip, validation errors, user files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _semantics_helpers import handshake
from socialmirror.body.skeleton import CONTACT_JOINTS
from socialmirror.semantics.annotations import (AnnotationError, Annotations, ClipAnnotation, Contact,
                                                load_user_annotations)
from socialmirror.semantics.annotator import annotate_clips


def _sample() -> Annotations:
    return Annotations([
        ClipAnnotation(0, 16, ("a person waves.", "a person waves back."),
                       (Contact("right_wrist", "right_wrist", 5, 10), Contact("head", "neck", 0, 0)),
                       "openai", 0.8, ("1 contact(s) clipped",)),
        ClipAnnotation(16, 32, ("a person stands.", "a person stands."), (), "offline", 1.0, ()),
    ])


def test_round_trip_exact_schema(tmp_path):
    path = tmp_path / "out" / "annotations.json"
    ann = _sample()
    ann.write(path)
    data = json.loads(path.read_text())
    assert list(data) == ["version", "joints", "clips"]
    assert data["version"] == 1 and data["joints"] == list(CONTACT_JOINTS)
    clip = data["clips"][0]
    assert list(clip) == ["start", "end", "text", "contacts", "source", "confidence", "warnings"]
    assert clip["contacts"][0] == ["right_wrist", "right_wrist", 5, 10]
    assert Annotations.read(path) == ann
    assert [p.name for p in path.parent.iterdir()] == ["annotations.json"]  # no temporary file left
    ann.write(path)  # overwrite in place
    assert Annotations.read(path) == ann


def _write(tmp_path, data) -> str:
    p = tmp_path / "a.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(p)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(version=2), "unsupported version"),
    (lambda d: d["joints"].pop(), "19 contact joints"),
    (lambda d: d["clips"][0]["contacts"].append(["left_pinky", "head", 0, 1]), "unknown joint 'left_pinky'"),
    (lambda d: d["clips"][0]["contacts"].append(["head", "head", 3, 16]), "0 <= t0 <= t1 < 16"),
    (lambda d: d["clips"][0]["contacts"].append(["head", "head", 5, 3]), "0 <= t0 <= t1"),
    (lambda d: d["clips"][0]["contacts"].append(["head", "head", 1]), "expected [joint of person 1"),
    (lambda d: d["clips"][0].update(source="gpt"), "'source' must be one of"),
    (lambda d: d["clips"][0].update(confidence=1.5), "'confidence' must be a number in [0, 1]"),
    (lambda d: d["clips"][0].update(text=["only one"]), "'text' must be a list of two sentences"),
    (lambda d: d["clips"][0].update(end=0), "'end' must be an integer greater than start"),
    (lambda d: d["clips"][0].pop("warnings"), "missing field 'warnings'"),
    (lambda d: d["clips"][1].update(start=0, end=16), "repeats the clip"),
    (lambda d: d.update(clips={}), "'clips' must be a list"),
])
def test_validation_errors_are_one_line(tmp_path, mutate, message):
    data = _sample().to_dict()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(AnnotationError) as info:
        Annotations.read(path)
    text = str(info.value)
    assert message in text and "\n" not in text and path in text


def test_unreadable_files(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        Annotations.read(tmp_path / "missing.json")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        Annotations.read(_write(tmp_path, "{oops"))
    with pytest.raises(AnnotationError, match="top level"):
        Annotations.read(_write(tmp_path, "[]"))
    assert isinstance(AnnotationError("x"), ValueError)


def test_write_refuses_invalid_records(tmp_path):
    bad = Annotations([ClipAnnotation(0, 16, ("a", "b"), (Contact("tail", "head", 0, 1),), "offline", 1.0)])
    with pytest.raises(AnnotationError):
        bad.write(tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_user_file_is_lenient_and_matched_by_clip(tmp_path):
    data = {"version": 1, "joints": list(CONTACT_JOINTS), "clips": [
        {"start": 0, "end": 16, "text": ["a person shakes hands.", "a person shakes hands."],
         "contacts": [["right_wrist", "right_wrist", 5, 10]]},
        {"start": 100, "end": 116, "text": ["a", "b"], "contacts": []}]}
    path = _write(tmp_path, data)
    matched, warnings = load_user_annotations(path, [(0, 16), (16, 32)])
    assert list(matched) == [(0, 16)] and matched[(0, 16)].source == "file"
    assert len(warnings) == 2 and any("[100, 116)" in w for w in warnings) and any("[16, 32)" in w for w in warnings)

    j = np.concatenate([handshake(), handshake()])
    ann = annotate_clips(f"file:{path}", joints3d=j, up=(0, 1, 0))
    assert [c.source for c in ann.clips] == ["file", "offline"]
    assert ann.clips[0].confidence > 0.9  # agrees with the geometry
    assert "not in" in ann.clips[1].warnings[0]
    # a broken user file is an error with a one-line message, not a silent fallback
    bad = _write(tmp_path, {"version": 1, "joints": list(CONTACT_JOINTS),
                            "clips": [{"start": 0, "end": 16, "text": ["a", "b"], "contacts": [["x", "y", 0, 1]]}]})
    with pytest.raises(AnnotationError, match="unknown joint 'x'"):
        annotate_clips(f"file:{bad}", joints3d=j, up=(0, 1, 0))


def test_full_pipeline_output_is_valid(tmp_path):
    ann = annotate_clips("offline", joints3d=np.concatenate([handshake()] * 3), up=(0, 1, 0))
    path = ann.write(tmp_path / "annotations.json")
    again = Annotations.read(path)
    assert again == ann
    assert again.clip_at(20).start == 16 and again.clip_at(99) is None


def test_contact_rows_unroll_clip_relative_frames():
    from socialmirror.body.skeleton import JOINT_INDEX
    from socialmirror.semantics.annotations import Annotations, ClipAnnotation, Contact, contact_rows
    ann = Annotations([ClipAnnotation(16, 32, ("a", "b"), (Contact("right_wrist", "left_wrist", 2, 4),),
                                      confidence=0.5)])
    rows = contact_rows(ann, num_frames=20)
    assert rows[:, 0].tolist() == [18, 19]  # frame 20 is past the end
    assert rows[0, 1] == JOINT_INDEX["right_wrist"] and rows[0, 2] == JOINT_INDEX["left_wrist"]
    assert np.allclose(rows[:, 3], 0.5)
    assert np.array_equal(contact_rows(ann.clips, 20), rows) and contact_rows(None, 20).shape == (0, 4)
