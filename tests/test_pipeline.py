"""The pipeline's stage cache: its key (a digest of everything a stage depends on), its entries on disk and in
memory, and the contract on a real run: a changed method recomputes the estimate and reuses the tracks, a
changed input recomputes everything, --force recomputes all."""
from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import pytest

from socialmirror import cli
from socialmirror.models.bundle import default_bundle_path
from socialmirror.pipeline.cache import Codec, StageCache, StaleEntry, digest
from _sample_helpers import write_sample_frames

needs_weights = pytest.mark.skipif(not default_bundle_path().is_file(), reason="no shipped weights")
STAGES = ["tracks", "pair", "draft", "annotations", "text", "estimate", "outputs"]


def _npz_codec(reads: list | None = None) -> Codec:
    def read(path):
        if reads is not None:
            reads.append(path)
        with np.load(path) as z:
            return z["x"].copy()
    return Codec(".npz", lambda x, path: np.savez(path, x=x), read)


# --------------------------------------------------------------------------------------------- the key
def test_digest_is_content_not_identity():
    @dataclasses.dataclass
    class Settings:
        steps: int
        weights: tuple

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert digest(a, {"b": 1, "a": [1.5, None]}) == digest(a.copy(), {"a": [1.5, None], "b": 1})
    assert digest(a) != digest(a.astype(np.float64))  # dtype counts
    assert digest(a) != digest(a.reshape(4, 3))  # shape counts
    changed = a.copy()
    changed[2, 3] += 1e-3
    assert digest(a) != digest(changed)
    assert digest(Settings(5, (1, 2))) == digest(Settings(5, (1, 2))) != digest(Settings(10, (1, 2)))
    assert digest(1) != digest(1.0) != digest("1") and digest(True) != digest(1)
    with pytest.raises(TypeError):
        digest(object())


# --------------------------------------------------------------------------------------------- entries
def test_fetch_computes_once_then_reads_until_an_input_changes(tmp_path):
    cache, calls, reads = StageCache(tmp_path), [], []

    def compute(value):
        calls.append(value)
        return np.full(3, value, dtype=np.float32)
    first = cache.fetch("stage", {"value": 1}, lambda: compute(1), _npz_codec(reads))
    assert cache.outcomes == {"stage": "computed"} and calls == [1]
    again = StageCache(tmp_path).fetch("stage", {"value": 1}, lambda: compute(1), _npz_codec(reads))
    assert np.array_equal(first, again) and calls == [1] and len(reads) == 1  # read back, not recomputed
    other = StageCache(tmp_path)
    other.fetch("stage", {"value": 2}, lambda: compute(2), _npz_codec())
    assert other.outcomes == {"stage": "computed"} and calls == [1, 2]
    forced = StageCache(tmp_path, force=True)
    forced.fetch("stage", {"value": 2}, lambda: compute(2), _npz_codec())
    assert forced.outcomes == {"stage": "computed"} and calls == [1, 2, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage.key", "stage.npz"]  # one entry per stage


def test_an_interrupted_write_never_pairs_a_new_entry_with_an_old_key(tmp_path):
    cache = StageCache(tmp_path)
    cache.fetch("stage", 1, lambda: np.zeros(2), _npz_codec())

    def broken_write(x, path):
        np.savez(path, x=x)  # the new entry lands, then the run dies before its key is written
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        StageCache(tmp_path).fetch("stage", 2, lambda: np.ones(2), Codec(".npz", broken_write, _npz_codec().read))
    assert not (tmp_path / "stage.key").exists()
    # Asked for the old inputs again, the cache recomputes: the file on disk holds the new entry.
    again = StageCache(tmp_path)
    assert np.array_equal(again.fetch("stage", 1, lambda: np.zeros(2), _npz_codec()), np.zeros(2))
    assert again.outcomes == {"stage": "computed"}


def test_damaged_or_stale_entries_are_recomputed(tmp_path, caplog):
    StageCache(tmp_path).fetch("stage", 1, lambda: np.zeros(2), _npz_codec())
    (tmp_path / "stage.npz").write_bytes(b"not an npz")
    cache = StageCache(tmp_path)
    with caplog.at_level("WARNING"):
        assert np.array_equal(cache.fetch("stage", 1, lambda: np.ones(2), _npz_codec()), np.ones(2))
    assert cache.outcomes == {"stage": "computed"} and "unreadable" in caplog.text

    def stale(path):
        raise StaleEntry("an output file changed")
    cache = StageCache(tmp_path)
    cache.fetch("stage", 1, lambda: np.ones(2), Codec(".npz", lambda x, p: np.savez(p, x=x), stale))
    assert cache.outcomes == {"stage": "computed"}


def test_memory_cache_shares_records_within_its_lifetime():
    cache, calls = StageCache(None), []
    make = (lambda: calls.append(1) or {"draft": 1})
    a = cache.fetch("draft", [1, 2], make, _npz_codec())
    b = cache.fetch("draft", [1, 2], make, _npz_codec())
    assert a is b and calls == [1] and cache.outcomes == {"draft": "hit"}
    assert StageCache(None).fetch("draft", [1, 2], make, _npz_codec()) is not a  # a new cache starts empty


# --------------------------------------------------------------------------------------------- the contract
@pytest.fixture(scope="module")
def short_input(tmp_path_factory):
    """The embedded sample's first 20 frames as a folder of PNGs."""
    return write_sample_frames(tmp_path_factory.mktemp("sample20"), 20)


@pytest.mark.slow
@needs_weights
def test_cache_contract_method_input_force(tmp_path, short_input, capsys):
    from socialmirror.api import ReconstructConfig, reconstruct
    out = tmp_path / "out"
    cfg = ReconstructConfig(render=False, viewer=False, progress=False)
    first = reconstruct(short_input, out, cfg)
    assert list(first.cache) == STAGES and set(first.cache.values()) == {"computed"}
    assert sorted(p.name for p in (out / ".cache").glob("*.key")) == sorted(f"{s}.key" for s in STAGES)

    rerun = reconstruct(short_input, out, cfg)  # nothing changed: everything is read back, the same
    assert set(rerun.cache.values()) == {"hit"}
    assert np.array_equal(rerun.joints3d, first.joints3d) and rerun.files == first.files

    # Another method, from the command line: the estimate (and the files) are recomputed, the rest reused.
    rc = cli.main(["reconstruct", str(short_input), "-o", str(out), "--method", "closeint", "--no-render",
                   "--no-viewer"])
    assert rc == 0
    reused = [line for line in capsys.readouterr().out.splitlines() if "reused from" in line]
    assert reused and reused[0].split(": ", 1)[1].startswith("tracks, pair, draft, annotations, text (")
    with np.load(out / "result.npz") as r:
        assert str(r["method"]) == "closeint" and not np.array_equal(r["joints3d"], first.joints3d)

    # Another input into the same folder: everything is recomputed.
    shorter = tmp_path / "shorter"
    shorter.mkdir()
    for p in sorted(short_input.iterdir())[:18]:
        shutil.copy(p, shorter / p.name)
    other = reconstruct(shorter, out, cfg)
    assert set(other.cache.values()) == {"computed"} and other.joints3d.shape[0] == 18

    forced = reconstruct(shorter, out, cfg, force=True)
    assert set(forced.cache.values()) == {"computed"}
    assert np.array_equal(forced.joints3d, other.joints3d)  # same inputs, same seed: the same result

    # An output file that changed since it was written is written again; the stages before it are reused.
    (out / "result.npz").write_bytes(b"edited")
    again = reconstruct(shorter, out, cfg)
    assert again.cache["estimate"] == "hit" and again.cache["outputs"] == "computed"
    with np.load(out / "result.npz") as r:
        assert np.array_equal(r["joints3d"], other.joints3d)


@pytest.mark.slow
@needs_weights
def test_annotate_runs_the_same_stages_as_reconstruct(tmp_path, short_input, capsys):
    out = tmp_path / "out"
    assert cli.main(["reconstruct", str(short_input), "-o", str(out), "--no-render", "--no-viewer",
                     "--set", "seed=2"]) == 0
    assert cli.main(["annotate", str(short_input), "-o", str(tmp_path / "a.json"), "--seed", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"wrote {tmp_path / 'a.json'}: 2 clips of 16 frames")
    assert (tmp_path / "a.json").read_text() == (out / "annotations.json").read_text()
    assert (tmp_path / ".a.work" / ".cache" / "annotations.key").is_file()


@needs_weights
def test_method_settings_the_bundle_cannot_run_are_config_errors(monkeypatch):
    import torch

    from socialmirror import pipeline
    from socialmirror.config import ConfigError
    from socialmirror.inference.methods import method_config
    from socialmirror.semantics import text_encoder
    from socialmirror.semantics.annotations import Annotations, ClipAnnotation
    models = pipeline.load_models()
    observation = pipeline.PairObservation(np.zeros((4, 2, 24, 3)), np.ones((4, 2, 3)), np.eye(3), (64, 64), 30.0,
                                           np.arange(2))
    too_wide = dataclasses.replace(method_config("closeint"), stride=models.bundle.config.clip_len + 1)
    with pytest.raises(ConfigError, match="method.stride"):
        pipeline.estimate(models, observation, too_wide, StageCache(None))

    class Wide:  # another encoder than the bundle's, of another width
        def encode(self, sentences):
            return torch.zeros(len(sentences), 512)
    monkeypatch.setattr(text_encoder, "get_text_encoder", lambda spec: Wide())
    annotations = Annotations([ClipAnnotation(0, 4, ("a person waves.", "a person waves back."))])
    with pytest.raises(ConfigError, match="text_encoder: 'clip:/elsewhere.pt' gives 512-d"):
        pipeline.encode_text(models, annotations, StageCache(None), encoder="clip:/elsewhere.pt")


def test_outputs_of_an_earlier_run_that_this_run_does_not_write_are_removed(tmp_path):
    """Issue 15 case 4: a rerun with --no-render --no-viewer must not leave the old render and viewer beside the
    new result; files that are not outputs (the user's own) stay."""
    from socialmirror.pipeline.export import _remove_earlier_outputs
    for name in ("result.npz", "annotations.json", "render.mp4", "viewer.html", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "000000_p0.obj").write_text("x")
    _remove_earlier_outputs(tmp_path, {"result": tmp_path / "result.npz",
                                       "annotations": tmp_path / "annotations.json"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.json", "notes.txt", "result.npz"]


def test_temporaries_of_a_killed_run_are_removed_by_the_next(tmp_path):
    """Issue 15 case 11: a run killed mid-write (SIGKILL) leaves its temporary files; the next run into the
    folder removes exactly those (every kind the project writes, in subfolders too), nothing of the user's."""
    import os

    from socialmirror.io import remove_stale_temporaries, temporary_beside
    (tmp_path / ".cache" / "perceive").mkdir(parents=True)
    made = []
    for path, suffix in ((tmp_path / "render.mp4", ".tmp.mp4"), (tmp_path / "result.npz", ".tmp.npz"),
                         (tmp_path / "viewer.html", ".tmp"), (tmp_path / ".cache" / "perceive" / "entry.npz", ".tmp.npz")):
        fd, name = temporary_beside(path, suffix)
        os.close(fd)
        made.append(name)
    keep = [tmp_path / n for n in ("notes.tmp", ".hidden", "render.mp4", ".my.tmp", "a.b.c.tmp.mp4")]
    for path in keep:
        path.write_text("x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(map(str, removed)) == sorted(made)
    assert all(p.exists() for p in keep) and not any(os.path.exists(m) for m in made)


def test_sigterm_ends_a_command_through_its_cleanup(tmp_path):
    """Issue 15 case 11: SIGTERM mid-write ends the command like Ctrl-C (exit 130, "interrupted"), and the
    atomic write removes its temporary file: nothing is left beside the outputs."""
    import signal
    import subprocess
    import sys
    import textwrap
    script = textwrap.dedent(f"""
        import sys, time
        from socialmirror import cli
        from socialmirror.io import atomic_write
        def slow(f):
            f.write(b"partial")
            print("writing", flush=True)
            time.sleep(30)
        def command(args):
            atomic_write({str(tmp_path / "result.npz")!r}, slow)
        cli.cmd_demo = command  # the parser, built inside main, dispatches "demo" to it
        sys.exit(cli.main(["demo"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in err
    assert os.listdir(tmp_path) == []


def test_a_second_run_into_a_busy_output_folder_is_a_user_error(tmp_path, monkeypatch):
    """Issue 15 case 4: two runs into one folder at once would interleave their files; the second is refused
    before any work, and the folder is free again once the first ends."""
    from socialmirror import api, pipeline
    from socialmirror.errors import InputError
    from socialmirror.io import output_lock
    monkeypatch.setattr(pipeline, "perceive", lambda *a, **k: pytest.fail("perception ran"))
    video = tmp_path / "in.mp4"
    video.write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    with output_lock(out):
        with pytest.raises(InputError, match="another socialmirror run is writing into"):
            api.reconstruct(video, out)
    with output_lock(out):  # released
        pass


def test_the_vlm_crops_are_decoded_in_one_pass_over_the_video(tmp_path, monkeypatch):
    """Issue 15 case 3: every clip re-decoded the video from frame 0 (quadratic in the length). Clips asked in
    order (the last one end-aligned, overlapping the one before) now cost one pass; each crop is the crop of its
    own frame; a clip before the kept ones reopens the video."""
    from socialmirror.perception import tracking, video
    from socialmirror.pipeline.records import Perception, VideoInput
    from socialmirror.pipeline.stages import _ClipCrops
    from socialmirror.windows import clip_ranges
    T = 20
    write_sample_frames(tmp_path, T)
    boxes = np.array([[100.0 + 5 * t, 80.0, 400.0 + 5 * t, 380.0] for t in range(T)])
    monkeypatch.setattr(tracking, "pair_crop_boxes", lambda tracks, ids: boxes)
    decoded = []
    real_open = video.open_video

    class Counting:
        def __init__(self, reader):
            self.reader = reader

        def __enter__(self):
            return (decoded.append(i) or (i, f) for i, f in self.reader.__enter__())

        def __exit__(self, *exc):
            return self.reader.__exit__(*exc)
    monkeypatch.setattr(video, "open_video", lambda *a, **k: Counting(real_open(*a, **k)))
    frames = [f for _, f in real_open(tmp_path).__enter__()]
    clips = clip_ranges(T, 8)
    assert clips[-1][0] < clips[-2][1]  # the end-aligned last clip overlaps
    with _ClipCrops(Perception(VideoInput(tmp_path), None), [0, 1], side=64) as crops:
        for s, e in clips:
            got = crops(s, e)
            assert len(got) == e - s
            for t, crop in zip(range(s, e), got):
                assert np.array_equal(crop, tracking.crop_frame(frames[t], boxes[t], 64))
        assert decoded == list(range(T))
        crops(0, 4)  # backwards: the video is read again from its start
        assert decoded == list(range(T)) + list(range(4))
