"""The command line itself: `python -m socialmirror`, a parser built without torch, one config system for every
sub-command (unknown keys are one-line errors, exit 2), `annotate` sharing `reconstruct`'s options, and `train`
never writing into the shipped weights."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from socialmirror import cli


def _run(capsys, *argv) -> tuple[int, str]:
    rc = cli.main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err[-1] if err else ""


def test_python_m_and_help_without_torch():
    code = ("import sys; from socialmirror.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'mediapipe', 'socialmirror.api') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # `socialmirror --help` needs none of them
    res = subprocess.run([sys.executable, "-m", "socialmirror", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "reconstruct" in res.stdout and "evaluate" in res.stdout


def _option_strings(command: str) -> set[str]:
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return {s for action in sub.choices[command]._actions for s in action.option_strings}


def test_annotate_shares_reconstructs_options():
    annotate, reconstruct = _option_strings("annotate"), _option_strings("reconstruct")
    assert {"--annotator", "--vlm-url", "--focal", "--intrinsics", "--device", "--config", "--set"} <= annotate
    assert annotate <= reconstruct
    assert {"--method", "--no-guidance", "--body", "--no-render"} <= reconstruct - annotate


def test_flags_config_and_overrides_resolve_in_order(tmp_path):
    config = tmp_path / "r.yaml"
    config.write_text("seed: 3\nmethod:\n  sampling_steps: 7\nmax_people: 4\n")
    args = cli.build_parser().parse_args(
        ["reconstruct", "in.mp4", "-o", "out", "--config", str(config), "--set", "seed=5", "--set",
         "method.guidance.geometry=0.3", "--method", "no-text", "--no-guidance", "contact", "--no-render"])
    cfg = cli._reconstruct_config(args)
    assert (cfg.seed, cfg.max_people, cfg.render, cfg.viewer) == (5, 4, False, True)
    assert (cfg.method.name, cfg.method.sampling_steps) == ("no-text", 7)
    assert (cfg.method.guidance.geometry, cfg.method.guidance.contact) == (0.3, 0.0)
    args = cli.build_parser().parse_args(["reconstruct", "in.mp4", "-o", "out", "--config", str(config),
                                          "--seed", "9"])
    assert cli._reconstruct_config(args).seed == 9  # a flag beats the file


def test_stated_statures_reach_the_people_left_to_right_zero_unknown():
    from socialmirror.errors import InputError
    args = cli.build_parser().parse_args(["reconstruct", "in.mp4", "-o", "out", "--statures", "1.82", "0"])
    cfg = cli._reconstruct_config(args)
    stated = cfg.stated_statures((7, 3))  # track ids, left to right
    assert stated[7] == 1.82 and np.isnan(stated[3])
    args = cli.build_parser().parse_args(["reconstruct", "in.mp4", "-o", "out", "--statures", "0", "0"])
    assert cli._reconstruct_config(args).stated_statures((7, 3)) is None
    args = cli.build_parser().parse_args(["reconstruct", "in.mp4", "-o", "out", "--max-people", "4",
                                          "--statures", "1.6", "1.7", "1.8"])
    cfg = cli._reconstruct_config(args)
    assert cfg.stated_statures((1, 2, 5)) == {1: 1.6, 2: 1.7, 5: 1.8}
    with pytest.raises(InputError, match="gives 3 heights but 4 people are reconstructed"):
        cfg.stated_statures((1, 2, 5, 6))


@pytest.mark.parametrize("argv, key", [
    (["reconstruct", "{tmp}/in.mp4", "-o", "{tmp}/o", "--set", "method.sampling_stepz=3"], "method.sampling_stepz"),
    (["annotate", "{tmp}/in.mp4", "-o", "{tmp}/a.json", "--set", "detector=2"], "detector"),
    (["evaluate", "--data", "synth:1", "--set", "method.guidance.gemoetry=1"], "method.guidance.gemoetry"),
    (["train", "geometry", "--data", "synth:1", "--steps", "1", "--out", "{tmp}/w.pt", "--set", "train.lrr=1"],
     "train.lrr"),
])
def test_unknown_config_keys_are_one_line_errors(capsys, tmp_path, argv, key):
    rc, line = _run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert rc == 2 and line.startswith(f"socialmirror {argv[0]}: error: unknown config key '{key}'")
    assert not (tmp_path / "w.pt").exists()


def test_bad_config_file_and_values(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    rc, line = _run(capsys, "reconstruct", "x.mp4", "-o", str(tmp_path / "o"), "--config", str(bad))
    assert rc == 2 and "must be a mapping" in line
    rc, line = _run(capsys, "reconstruct", "x.mp4", "-o", str(tmp_path / "o"), "--method", "best")
    assert rc == 2 and "method.name: unknown method 'best'" in line
    rc, line = _run(capsys, "evaluate", "--data", "synth:1", "--set", "method.sampling_steps=0")
    assert rc == 2 and "sampling_steps must be at least 1" in line


def test_train_needs_an_explicit_out(capsys):
    """Without --out nothing is trained (the old default was the shipped weights in the package)."""
    from socialmirror.models.bundle import default_bundle_path
    weights = default_bundle_path()
    before = weights.stat().st_mtime_ns if weights.is_file() else None
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "geometry", "--data", "synth:1", "--steps", "1"])
    assert exit_.value.code == 2 and "--out" in capsys.readouterr().err
    assert (weights.stat().st_mtime_ns if weights.is_file() else None) == before
    train = next(a for a in cli.build_parser()._actions if a.dest == "command").choices["train"]
    out = next(a for a in train._actions if a.dest == "out")
    assert out.required and out.default is None


def test_train_without_a_budget_is_a_user_error(capsys, tmp_path):
    rc, line = _run(capsys, "train", "geometry", "--data", "synth:1", "--out", str(tmp_path / "w.pt"))
    assert rc == 2 and "--steps N, --minutes M or --steps-like BUNDLE" in line


def test_unknown_guidance_term_is_a_one_line_error(capsys, tmp_path):
    rc, line = _run(capsys, "reconstruct", "x.mp4", "-o", str(tmp_path / "o"), "--no-guidance", "gravity")
    assert rc == 2 and "unknown config key 'method.guidance.gravity'" in line


def test_every_project_error_has_one_base_and_user_errors_exit_2():
    """One exception base; the user errors under it map to exit 2, anything else to 1 (errors.exit_code)."""
    from socialmirror.body.base import BodyModelError
    from socialmirror.config import ConfigError
    from socialmirror.data.datasets import DataSpecError
    from socialmirror.data.datasets.butepage import ButepageError
    from socialmirror.data.formats.bvh import BvhError
    from socialmirror.data.formats.interchange import InterchangeError
    from socialmirror.errors import InputError, SocialMirrorError, UserError, exit_code
    from socialmirror.inference.estimator import MethodUnavailableError
    from socialmirror.models.bundle import CheckpointError
    from socialmirror.semantics.annotations import AnnotationError
    from socialmirror.semantics.client import VLMError
    user = (InputError, BodyModelError, ConfigError, DataSpecError, ButepageError, BvhError, InterchangeError,
            MethodUnavailableError, CheckpointError, AnnotationError)
    for cls in user:
        assert issubclass(cls, UserError) and exit_code(cls("x")) == 2, cls
    assert issubclass(VLMError, SocialMirrorError) and exit_code(VLMError("x")) == 1
    assert exit_code(FileNotFoundError("x")) == 2 and exit_code(RuntimeError("x")) == 1
    assert exit_code(KeyboardInterrupt()) == 130


@pytest.mark.parametrize("flags, message", [
    (["--focal", "0"], "focal length must be a positive number of pixels, got 0.0"),
    (["--focal", "nan"], "focal length must be a positive number of pixels, got nan"),
    (["--intrinsics", "0", "0", "0", "0"], "the focal lengths FX FY must be positive"),
    (["--intrinsics", "-500", "500", "320", "240"], "the focal lengths FX FY must be positive"),
    (["--intrinsics", "500", "500", "-1", "240"], "the principal point CX CY must lie in the image"),
    (["--vlm-url", "ftp://example.org/v1"], "--vlm-url must be an http(s) URL"),
    (["--threads", "-3"], "--threads: a positive number of CPU threads, got -3"),
    (["--seed", "99999999999999999999"], "--seed: an integer from 0 to"),
    (["--seed", "-1"], "--seed: an integer from 0 to"),
    (["--device", "nonsense"], "device: not a torch device: 'nonsense'"),
    (["--export", "bvh,fbx"], "export: unknown format 'fbx' (known: bvh, glb, smpl)"),
    (["--export", "smpl"], "export: smpl writes SMPL / SMPL-X parameters, which needs that body"),
    (["--statures", "175", "0"], "statures: a standing height in metres (0.5-2.5) or 0 for not known, got 175"),
    (["--statures", "1.8", "1.6", "1.7"], "statures: one height per person reconstructed, left to right (2 to "
                                          "max_people = 2), got 3"),
])
def test_bad_values_are_user_errors_before_any_work(capsys, tmp_path, monkeypatch, flags, message):
    """Issue 15 cases 5 and 7: each bad value a one-line error and exit 2, before perception runs (the video
    is a real file here: only the value is wrong) and before the output folder is made."""
    from socialmirror import pipeline
    monkeypatch.setattr(pipeline, "perceive", lambda *a, **k: pytest.fail("perception ran"))
    video = tmp_path / "in.mp4"
    video.write_bytes(b"not decoded: the error comes first")
    rc, line = _run(capsys, "reconstruct", str(video), "-o", str(tmp_path / "out"), *flags)
    assert rc == 2 and line.startswith("socialmirror reconstruct: error: ") and message in line, line
    assert not (tmp_path / "out").exists()


def test_a_device_this_machine_lacks_is_named_not_the_checkpoint(capsys, tmp_path, monkeypatch):
    """Issue 15 case 8: --device cuda without CUDA says so (it used to blame the shipped checkpoint)."""
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, line = _run(capsys, "reconstruct", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o"), "--device", "cuda")
    assert rc == 2 and "sees no CUDA device" in line and "checkpoint" not in line


def test_output_paths_that_cannot_be_written_are_user_errors(capsys, tmp_path, monkeypatch):
    """Issue 15 case 7: -o naming a file, a folder under a file, annotate -o naming a folder, demo -o FILE."""
    from socialmirror import pipeline
    monkeypatch.setattr(pipeline, "perceive", lambda *a, **k: pytest.fail("perception ran"))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    video = tmp_path / "in.mp4"
    video.write_bytes(b"x")
    cases = [(["reconstruct", str(video), "-o", str(a_file)], "exists and is not a folder"),
             (["reconstruct", str(video), "-o", str(a_file / "sub")], "cannot create the output folder"),
             (["annotate", str(video), "-o", str(tmp_path)], "is a folder; give the path of the file"),
             (["demo", "-o", str(a_file)], "exists and is not a folder")]
    for argv, message in cases:
        rc, line = _run(capsys, *argv)
        assert rc == 2 and message in line, (argv, line)


def test_a_principal_point_outside_the_image_is_a_user_error():
    from socialmirror.errors import InputError
    from socialmirror.pipeline import CameraSettings
    assert CameraSettings(intrinsics=(500.0, 500.0, 480.0, 270.0)).matrix(960, 540)[0, 2] == 480.0
    with pytest.raises(InputError, match="outside the 960x540 image"):
        CameraSettings(intrinsics=(500.0, 500.0, 5000.0, 240.0)).matrix(960, 540)


def test_a_write_the_machine_refuses_is_a_user_error_with_a_hint():
    """Issue 15 case 1: a full disk or a file size limit ends as a one-line error and exit 2 (it used to be an
    "internal error"), saying what to check; other OS errors stay internal."""
    import errno

    from socialmirror.errors import exit_code, user_message
    full = OSError(errno.ENOSPC, "No space left on device")
    assert exit_code(full) == 2 and exit_code(OSError(errno.EFBIG, "File too large")) == 2
    assert user_message(full).startswith("could not write an output: No space left on device (a full disk")
    assert exit_code(OSError(errno.EBADF, "Bad file descriptor")) == 1


def test_a_principal_point_outside_the_video_is_refused_before_perception(capsys, tmp_path, monkeypatch):
    """Issue 15 case 5: the principal point is checked against the video's size (its first frame read) before
    perception runs, not after it."""
    from socialmirror import pipeline
    from socialmirror.render.demo_sample import SAMPLE_VIDEO
    monkeypatch.setattr(pipeline, "perceive", lambda *a, **k: pytest.fail("perception ran"))
    for command, out in (("reconstruct", tmp_path / "out"), ("annotate", tmp_path / "a.json")):
        rc, line = _run(capsys, command, str(SAMPLE_VIDEO), "-o", str(out),
                        "--intrinsics", "500", "500", "5000", "240")
        assert rc == 2 and "outside the 960x540 image" in line, line


@pytest.mark.parametrize("override, message", [
    ("train.lr=-1", "lr must be a finite positive number, got -1"),
    ("train.lr=nan", "lr must be a finite positive number, got nan"),
    ("train.grad_clip=0", "grad_clip must be a finite positive number"),
    ("train.log_every=0", "log_every must be at least 1"),
    ("train.lr_min=0.1", "lr_min (0.1) must not exceed lr"),
])
def test_bad_training_values_are_user_errors_before_data_synthesis(capsys, tmp_path, monkeypatch, override, message):
    """Issue 15 case 7: a training config with a bad learning rate failed only after the data was
    synthesized; now it is a one-line error, exit 2, before."""
    from socialmirror.training import trainer
    monkeypatch.setattr(trainer.TrainingData, "load", lambda *a, **k: pytest.fail("data was made"))
    rc, line = _run(capsys, "train", "initial", "--data", "synth:4", "--steps", "1", "--out", str(tmp_path / "b"),
                    "--set", override)
    assert rc == 2 and message in line, line
