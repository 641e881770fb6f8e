"""The ``socialmirror`` command line: a thin layer over the Python API.

Each sub-command is one function here that parses its options and calls into the library; every
failure a user can cause (a missing file, a bad option, an unknown config key, missing SMPL files) ends in one
line on stderr and exit code 2, never a traceback (set SOCIALMIRROR_DEBUG=1 to see one). Building the parser
imports nothing heavy (no torch), so ``socialmirror --help`` answers at once; each sub-command imports what it
runs.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time

from socialmirror import __version__
from socialmirror.config import add_config_options
from socialmirror.errors import EXIT_USER_ERROR, exit_code, one_line
from socialmirror.training.cli import add_train_arguments  # light: the parser is built without torch

log = logging.getLogger("socialmirror")

# ---------------------------------------------------------------------------------------------- setup
def cmd_setup(args) -> int:
    """Build the one-time caches: anny's model cache, MediaPipe's pose task bundle and the rasteriser's compiled
    kernels (and check that the perception recall's models load)."""
    from socialmirror.paths import anny_cache_dir, cache_dir
    print(f"cache folder: {cache_dir()} (set SOCIALMIRROR_CACHE to move it)")
    t = time.perf_counter()
    from socialmirror.body.anny_model import build_anny
    build_anny(anny_cache_dir())
    print(f"anny body model ready ({time.perf_counter() - t:.1f} s; {anny_cache_dir()})")
    t = time.perf_counter()
    from socialmirror.perception.pose import pose_task_bundle
    path = pose_task_bundle()
    print(f"MediaPipe pose bundle ready ({time.perf_counter() - t:.1f} s; {path})")
    # The recall's face detectors and region landmarker read their models straight from the wheel (nothing to
    # cache); loading them here makes a wheel without them fail at set-up rather than on a reconstruction.
    t = time.perf_counter()
    from socialmirror.perception.recall import FaceSeeder, RegionPoseLandmarker
    FaceSeeder().close()
    RegionPoseLandmarker().close()
    print(f"MediaPipe face detectors and region pose landmarker load ({time.perf_counter() - t:.1f} s)")
    t = time.perf_counter()
    from socialmirror.render.mesh_renderer import compile_kernels
    compile_kernels()
    print(f"mesh rasteriser compiled ({time.perf_counter() - t:.1f} s)")
    return 0


# ---------------------------------------------------------------------------------------- reconstruct
# Every sub-command with a config resolves it the same way (socialmirror.config.load): the dataclass's
# defaults, then --config FILE.yaml, then --set KEY=VALUE, then the flags the user gave. So no flag has an
# argparse default of its own (an unset flag must not override the file); the defaults in the help texts are
# the dataclasses'.
def _add_pipeline_options(p: argparse.ArgumentParser,
                          input_help: str = "video file (mp4, avi, mov) or folder of frames") -> None:
    """The options of the stages up to the annotations, shared by ``reconstruct``, ``annotate`` and ``batch``
    (``ReconstructConfig``)."""
    p.add_argument("input", help=input_help)
    g = p.add_argument_group("pipeline options (ReconstructConfig; also --config / --set)")
    g.add_argument("--annotator", help="offline (default) | openai | file:PATH")
    g.add_argument("--vlm-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (key from "
                   "$OPENAI_API_KEY)")
    g.add_argument("--vlm-model", help="model name the VLM server serves")
    g.add_argument("--vlm-timeout", type=float, metavar="S",
                   help="seconds for each clip's request, retries included (default 30); then the offline annotator")
    g.add_argument("--focal", type=float, help="focal length in pixels (default: the image diagonal)")
    g.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"))
    g.add_argument("--level-camera", action="store_true", default=None,
                   help="assume a level camera (default: its pitch estimated from the people's feet and heads)")
    g.add_argument("--checkpoint", help="model weights (default: the shipped ones)")
    g.add_argument("--device", help="cpu (default) or cuda")
    g.add_argument("--fps", type=float, help="frame rate of a folder of frames (default 30)")
    g.add_argument("--seed", type=int, help="default 0")
    g.add_argument("--threads", type=int, help="torch CPU threads")
    g.add_argument("--perception-workers", type=int, metavar="N",
                   help="frames detected at once, each by its own detector (default: one per CPU core, at most 4)")
    g.add_argument("--force", action="store_true", help="recompute every stage (ignore the cache)")
    add_config_options(g)


def _add_reconstruct_options(p: argparse.ArgumentParser) -> None:
    """What only ``reconstruct`` has: the method and the outputs."""
    g = p.add_argument_group("method and outputs")
    g.add_argument("--method", help="socialmirror (default), closeint, independent, or an ablation (no-text, "
                   "no-geometry, no-contact, no-refiner, socialmirror-nofit, socialmirror-linear); tune it with "
                   "--set method.KEY=V")
    g.add_argument("--no-guidance", nargs="+", metavar="TERM",
                   help="switch guidance terms off: geometry, contact, penetration, reprojection "
                        "(method.guidance.TERM=0)")
    g.add_argument("--no-fit", dest="fit", action="store_false", default=None,
                   help="skip the final fit to the image evidence (method.fit.enabled=false)")
    g.add_argument("--body", help="output body model: anny (default), smpl:DIR, smplx:DIR")
    g.add_argument("--meshes", choices=["obj"], help="also write per-frame meshes")
    g.add_argument("--export", metavar="FORMATS",
                   help="also write files for other tools, comma-separated: bvh (person1.bvh, person2.bvh), glb "
                        "(scene.glb: skinned, animated bodies and the camera), smpl (smpl_params_person1.npz, ...: "
                        "SMPL / SMPL-X parameters; needs --body smpl:DIR or smplx:DIR)")
    g.add_argument("--no-render", dest="render", action="store_false", default=None, help="skip render.mp4")
    g.add_argument("--render-view", choices=["both", "overlay", "side"],
                   help="what render.mp4 shows: the frames with the meshes overlaid beside a side view (both, the "
                        "default), or either alone (the side view alone costs about half)")
    g.add_argument("--no-viewer", dest="viewer", action="store_false", default=None, help="skip viewer.html")
    g.add_argument("--max-people", type=int, metavar="N",
                   help="reconstruct up to N people, each with their closest partner (default 2: the closest pair)")
    g.add_argument("--statures", type=float, nargs="+", metavar="HEIGHT",
                   help="the people's standing heights in metres, left to right, one per person reconstructed (0: "
                        "not known): the fit gives them bodies of that height, which fixes their distance from the "
                        "camera")


_PIPELINE_FLAGS = ("annotator", "vlm_url", "vlm_model", "vlm_timeout", "focal", "intrinsics", "level_camera",
                   "checkpoint", "device", "fps", "seed", "threads", "perception_workers")
_RECONSTRUCT_FLAGS = ("body", "meshes", "render", "render_view", "viewer", "export", "max_people", "statures")


def _given(args, names) -> dict:
    """The flags among ``names`` that the user gave, as config values."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _reconstruct_config(args):
    """ReconstructConfig from defaults, --config, --set and the flags of ``reconstruct`` or ``annotate``."""
    from socialmirror.api import ReconstructConfig
    from socialmirror.config import load
    flags = _given(args, _PIPELINE_FLAGS + _RECONSTRUCT_FLAGS)
    method: dict = {}
    if getattr(args, "method", None):
        method["name"] = args.method
    if getattr(args, "no_guidance", None):
        method["guidance"] = {term: 0.0 for term in args.no_guidance}
    if getattr(args, "fit", None) is False:
        method["fit"] = {"enabled": False}
    if method:
        flags["method"] = method
    return load(ReconstructConfig, args.config, args.overrides, flags)


def _print_result(res) -> None:
    who = "the pair" if res.joints3d.shape[1] == 2 else f"{res.joints3d.shape[1]} people"
    print(f"reconstructed {res.joints3d.shape[0]} frames of {who} (track ids {res.track_ids.tolist()}) "
          f"into {res.output_dir}")
    for name, path in res.files.items():
        print(f"  {name:12s} {path}")
    reused = [stage for stage, outcome in res.cache.items() if outcome == "hit"]
    if reused:
        print(f"  reused from {res.output_dir / '.cache'}: {', '.join(reused)} (--force recomputes)")
    print(f"  mean reprojection error {res.reprojection_px:.1f} px; time per stage: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in res.timings.items() if "/" not in k))


def cmd_reconstruct(args) -> int:
    cfg = _reconstruct_config(args)
    from socialmirror.api import reconstruct
    res = reconstruct(args.input, args.output, cfg, force=args.force)
    _print_result(res)
    return 0


def cmd_batch(args) -> int:
    cfg = _reconstruct_config(args)
    from socialmirror.batch import SUMMARY_NAME, format_summary, run_batch
    items = run_batch(args.input, args.output, cfg, force=args.force, ray=args.ray or bool(args.ray_address),
                      ray_address=args.ray_address)
    print(format_summary(items))
    print(f"summary: {args.output}/{SUMMARY_NAME}")
    failed = [i for i in items if i.status != "done"]
    if failed:
        print(f"socialmirror batch: {len(failed)} of {len(items)} videos failed: "
              + "; ".join(f"{i.input} ({i.message})" for i in failed), file=sys.stderr)
        return 1
    return 0


def cmd_annotate(args) -> int:
    cfg = _reconstruct_config(args)
    from socialmirror.api import annotate
    ann = annotate(args.input, args.output, cfg, force=args.force)
    sources = sorted({c.source for c in ann.clips})
    lengths = sorted({c.end - c.start for c in ann.clips})
    print(f"wrote {args.output}: {len(ann.clips)} clips of {'/'.join(map(str, lengths))} frames (sources: "
          f"{', '.join(sources)}), {sum(len(c.contacts) for c in ann.clips)} contacts")
    return 0


def cmd_live(args) -> int:
    import json

    from socialmirror.io import atomic_write_json, output_file
    from socialmirror.live import LiveSettings, run_live
    settings = LiveSettings(window=args.window, stride=args.stride, realtime=args.realtime,
                            max_frames=args.max_frames, method=args.method or "socialmirror", seed=args.seed or 0,
                            perception_workers=args.perception_workers, fit_iterations=args.fit_iterations,
                            statures=tuple(args.statures) if args.statures else None)
    summary_path = output_file(args.summary_json) if args.summary_json else None
    out = open(output_file(args.out), "w", encoding="utf-8") if args.out else sys.stdout
    import torch
    torch.set_num_threads(args.threads or 1)  # the 3D stages' thread shares the cores with perception's workers
    page = None
    try:
        if args.serve is not None:
            from socialmirror.live import LatestPage
            page = LatestPage(args.serve)
            print(f"live page: {page.url}", file=sys.stderr)

        def emit(record: dict) -> None:
            out.write(json.dumps(record) + "\n")
            out.flush()
            if page is not None:
                page.update(record)
        summary = run_live(args.source, settings, emit)
    finally:
        if out is not sys.stdout:
            out.close()
        if page is not None:
            page.close()
    p50, p95 = summary.p50_latency_s, summary.p95_latency_s
    print(f"live: {summary.frames} frames, {summary.dropped} dropped, {summary.windows} windows "
          f"({summary.windows_without_pair} without a pair); latency p50 "
          f"{'-' if p50 is None else f'{p50:.2f} s'}, p95 {'-' if p95 is None else f'{p95:.2f} s'}; "
          f"ended: {summary.ended}", file=sys.stderr)
    if summary_path is not None:
        atomic_write_json(summary_path, summary.to_dict())
    return 0


# ----------------------------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    from socialmirror.demo import run_demo
    return run_demo(out_dir=args.output, seed=args.seed)


# ------------------------------------------------------------------------------------------------ fit
def cmd_fit(args) -> int:
    """IK-fit the body model to a joint-only two-person source and report the residual."""
    import numpy as np
    import torch

    from socialmirror.body import build_body_model
    from socialmirror.data.datasets import sequences_from_spec
    from socialmirror.body.ik import IKConfig, fit_joints

    torch.set_num_threads(args.threads)
    body = build_body_model(args.body)
    sequences = sequences_from_spec(args.data, fps=args.fps)
    if not sequences:
        raise FileNotFoundError(f"no sequences in {args.data}")
    results = {}
    for seq in sequences:
        res = fit_joints(body, seq.joints3d, seq.joint_names, IKConfig(iterations=args.iterations))
        print(f"{seq.name}: {seq.num_frames} frames x 2 persons, {len(seq.joint_names)} joints: "
              f"mean joint residual {res.residual_mm:.1f} mm in {res.seconds:.1f} s")
        worst = sorted(res.per_joint_mm.items(), key=lambda kv: -kv[1])[:4]
        print("  largest per-joint residuals: " + ", ".join(f"{k} {v:.0f} mm" for k, v in worst))
        results[seq.name] = res
    if args.output:
        arrays = {}
        for name, res in results.items():
            arrays[f"{name}/rotmats"] = res.rotmats.numpy()
            arrays[f"{name}/shape"] = res.shape.numpy()
            arrays[f"{name}/transl"] = res.transl.numpy()
            arrays[f"{name}/joints"] = res.joints.numpy()
            arrays[f"{name}/residual_mm"] = np.float32(res.residual_mm)
        from socialmirror.io import atomic_savez
        atomic_savez(args.output, **arrays)
        print(f"wrote {args.output}")
    return 0


def _image_size(text: str) -> tuple[int, int]:
    """``WxH`` (e.g. 1280x720) -> (W, H), even and positive (H.264 needs even sizes)."""
    from socialmirror.errors import InputError
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size must be WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
    if w < 64 or h < 64 or w % 2 or h % 2:
        raise InputError(f"--size must be even and at least 64x64, got {text!r}")
    return w, h


def cmd_make_sample(args) -> int:
    """Regenerate the embedded demo sample (video + ground truth) from its seed."""
    from socialmirror.render.demo_sample import make_sample
    video, gt = make_sample(args.output, seed=args.seed, action=args.action, size=_image_size(args.size))
    print(f"wrote {video} ({video.stat().st_size / 1e6:.2f} MB) and {gt}")
    return 0


def cmd_calibrate_world(args) -> int:
    """Measure MediaPipe's 3D error on a rendered video of known poses (default: the embedded sample)."""
    import numpy as np

    from socialmirror.pipeline.calibration import calibrate_world_error
    from socialmirror.render.demo_sample import SAMPLE_GT, SAMPLE_VIDEO
    video = args.input or str(SAMPLE_VIDEO)
    truth_path = args.truth or (str(SAMPLE_GT) if not args.input else None)
    if truth_path is None:
        raise FileNotFoundError("--truth: the ground truth of the video (an .npz with joints_cam and intrinsics)")
    with np.load(truth_path, allow_pickle=False) as z:
        truth, K = z["joints_cam"], z["intrinsics"]
    model = calibrate_world_error(video, truth, K)
    path = model.save(args.output)
    print(f"MediaPipe's world landmarks on {model.source}: median global rotation {model.rotation_deg:.1f} deg")
    for bone, chord in model.bone_chord.items():
        print(f"  {bone:30s} rms chord {chord:.2f} ({np.degrees(2 * np.arcsin(min(chord, 2.0) / 2)):.0f} deg)")
    print(f"wrote {path}")
    return 0


def cmd_synth(args) -> int:
    from socialmirror.data.synth.cli import synth_main
    return synth_main(args.n, args.output, seed=args.seed, types=args.types, with_vertices=args.vertices,
                      jobs=args.jobs, adult_stature=args.adult_stature)


def cmd_train(args) -> int:
    from socialmirror.training.cli import run_train
    return run_train(args)


def cmd_evaluate(args) -> int:
    from socialmirror.config import load
    from socialmirror.evaluation.evaluate import EvaluateConfig, evaluate, to_markdown, write_report
    cfg = load(EvaluateConfig, args.config, args.overrides,
               _given(args, ("methods", "checkpoint", "seed", "max_sequences", "max_frames", "pen_stride", "threads",
                              "device", "observe", "render_cache", "jobs")))
    doc = evaluate(args.data, cfg)
    write_report(doc, args.json, args.markdown)
    print(to_markdown(doc))
    if args.json:
        print(f"wrote {args.json}" + (f" and {args.markdown}" if args.markdown else ""))
    return 0


def cmd_cross_dataset(args) -> int:
    from socialmirror.config import load
    from socialmirror.evaluation.cross_dataset import CrossDatasetPlan, TrainingSettings, run_cross_dataset, to_markdown
    from socialmirror.evaluation.evaluate import EvaluateConfig
    plan = CrossDatasetPlan.parse(args.dataset, args.train)
    cfg = load(EvaluateConfig, args.config, args.overrides,
               _given(args, ("seed", "max_sequences", "max_frames", "pen_stride", "threads", "observe",
                             "render_cache", "jobs")))
    training = TrainingSettings(minutes=args.minutes, steps=args.steps, threads=args.threads, seed=cfg.seed,
                                overrides=tuple(args.train_set))
    table = run_cross_dataset(plan, args.out, training, cfg)
    print(to_markdown(table))
    print(f"wrote {args.out}/table4-{cfg.observe}.json and .md")
    return 0


def cmd_bench(args) -> int:
    import json
    from socialmirror.evaluation.bench import bench, format_bench
    report = bench(args.input, threads=args.threads, method=args.method)
    print(format_bench(report))
    if args.json:
        from socialmirror.io import atomic_write_json
        atomic_write_json(args.json, report)
    else:
        print(json.dumps(report["machine"]))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="socialmirror",
        description="Reconstruct the 3D motion of two interacting people from one monocular video.")
    parser.add_argument("--version", action="version", version=f"socialmirror {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("setup", help="build the one-time caches (anny model, MediaPipe pose bundle, the rasteriser)")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("reconstruct", help="video file or folder of frames -> both people's 3D motion")
    p.add_argument("-o", "--output", required=True, help="output folder")
    _add_pipeline_options(p)
    _add_reconstruct_options(p)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("batch", help="every video of a folder reconstructed into a folder of its own "
                                     "(resumable; a summary table; the others go on when one fails)")
    p.add_argument("-o", "--output", required=True, help="output folder: one sub-folder per video")
    p.add_argument("--ray", action="store_true", help="run the videos as Ray tasks (pip install 'socialmirror[ray]')")
    p.add_argument("--ray-address", help="the Ray cluster to join (default: start a local one)")
    _add_pipeline_options(p, "folder of videos (and of sub-folders of frames)")
    _add_reconstruct_options(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("live", help="a camera, stream or file reconstructed window by window as frames arrive "
                                    "(JSON lines)")
    p.add_argument("source", help="camera index (0) or /dev/videoN, rtsp:// or http(s):// stream, or video file")
    p.add_argument("--out", help="write the JSON lines here (default: stdout)")
    p.add_argument("--summary-json", help="write frames, dropped, windows and latency p50/p95 here")
    p.add_argument("--realtime", action="store_true", help="play a file at its own frame rate")
    p.add_argument("--serve", type=int, metavar="PORT",
                   help="also show the latest bodies on a local web page, http://127.0.0.1:PORT/ (0: any port)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--window", type=int, default=16, help="frames per reconstruction (default 16)")
    p.add_argument("--stride", type=int, default=8, help="new frames between two records (default 8)")
    p.add_argument("--method", help="socialmirror (default), closeint, ... as reconstruct")
    p.add_argument("--fit-iterations", type=int, metavar="N",
                   help="iterations of the fit to the evidence per window (default: the method's, 150); fewer "
                        "trade accuracy for latency")
    p.add_argument("--statures", type=float, nargs=2, metavar=("PERSON0", "PERSON1"),
                   help="the two people's standing heights in metres, person 0 first (the first window's left "
                        "person; 0: not known), as reconstruct --statures")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads for the 3D stages (default 1)")
    p.add_argument("--perception-workers", type=int, default=2, metavar="N",
                   help="frames detected at once, each by its own detector (default 2)")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("annotate", help="the VLM Annotator's per-clip sentences and contacts (Table 1 protocol)")
    p.add_argument("-o", "--output", required=True, help="annotations .json to write")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_annotate)

    p = sub.add_parser("demo", help="run the most complete path on the embedded default and report errors")
    p.add_argument("-o", "--output", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("synth", help="synthesize two-person interactions with exact contacts and sentences")
    p.add_argument("-n", type=int, required=True, help="number of sequences")
    p.add_argument("-o", "--output", required=True, help="output folder (interchange .npz files)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--types", nargs="+", help="interaction types (default: all)")
    p.add_argument("--vertices", action="store_true", help="also store the meshes")
    p.add_argument("--jobs", type=int, default=1, help="processes synthesizing at once (default 1); files "
                   "already in the folder are kept, so an interrupted run resumes")
    p.add_argument("--adult-stature", nargs=3, type=float, metavar=("WOMEN", "MEN", "SPREAD"),
                   help="adults' statures drawn around the women's and the men's mean with this spread, in metres "
                   "(e.g. 1.63 1.77 0.07); default: anny's height phenotype drawn uniformly (1.79 +- 0.19 m)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train a model stage (or 'all': the recipe of the shipped weights)")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    _add_evaluate_parser(sub)
    _add_tool_parsers(sub)
    return parser


def _add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="every method on the same observations (simulated, or rendered videos "
                                        "through the whole pipeline), every metric")
    p.add_argument("--data", action="append", required=True,
                   help="npz:DIR, cmu:DIR, butepage:DIR, synth:N, hi4d:DIR, 3dpw.test:DIR, ... (repeatable)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", help="write the tables here")
    g = p.add_argument_group("evaluation options (EvaluateConfig; also --config / --set)")
    g.add_argument("--methods", nargs="+",
                   help="default: independent closeint socialmirror; also socialmirror-linear no-text no-geometry "
                        "no-contact no-refiner (--set method.KEY=V adjusts all of them)")
    g.add_argument("--checkpoint", help="model weights (default: the shipped ones)")
    g.add_argument("--device", help="cpu (default) or cuda")
    g.add_argument("--seed", type=int, help="default 0")
    g.add_argument("--max-sequences", type=int, help="evaluate at most this many sequences per data set")
    g.add_argument("--max-frames", type=int, help="evaluate the middle N frames (at 30 fps) of each sequence "
                                                  "(default: all; 60 = 2 s)")
    g.add_argument("--observe", choices=("simulate", "render"),
                   help="simulate (default): the observation model's detections; render: each sequence rendered "
                        "to a video and reconstructed by the whole pipeline (--set render.long_side=...)")
    g.add_argument("--render-cache", help="folder of the rendered videos (default: the cache folder's eval_renders)")
    g.add_argument("--jobs", type=int, help="render: worker processes that render and perceive ahead of the 3D "
                                            "stages (default 1)")
    g.add_argument("--pen-stride", type=int, help="penetration on every n-th frame (default 4)")
    g.add_argument("--threads", type=int, help="torch CPU threads")
    add_config_options(g)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("cross-dataset", help="the paper's Table 4: bundles trained on some data sets (the recipe of "
                                             "the shipped weights), each evaluated on the others")
    p.add_argument("--dataset", action="append", required=True, metavar="NAME=SPEC",
                   help="a named data set, e.g. cmu=cmu:../shared/data/cmu_18_19 (repeatable; a spec's @WEIGHT "
                        "only weighs it in training)")
    p.add_argument("--train", action="append", required=True, metavar="NAME[+NAME...]",
                   help="a source: the data sets one bundle is trained on together (repeatable)")
    p.add_argument("--out", required=True, help="folder of the bundles, evaluations and table4-PROTOCOL.json / .md; "
                                                "an interrupted run continues from it")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="training budget per bundle")
    budget.add_argument("--steps", type=int, help="training steps per bundle (over the recipe's stages)")
    p.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a training config override (model.* or train.*, as train's --set; repeatable)")
    g = p.add_argument_group("evaluation options (as evaluate's; methods: closeint and socialmirror)")
    g.add_argument("--seed", type=int, help="training and evaluation seed (default 0)")
    g.add_argument("--max-sequences", type=int)
    g.add_argument("--max-frames", type=int)
    g.add_argument("--observe", choices=("simulate", "render"))
    g.add_argument("--render-cache")
    g.add_argument("--jobs", type=int)
    g.add_argument("--pen-stride", type=int)
    g.add_argument("--threads", type=int, help="torch CPU threads (training and evaluation)")
    add_config_options(g)
    p.set_defaults(func=cmd_cross_dataset)


def _add_tool_parsers(sub) -> None:
    """The commands around the pipeline: bench, make-sample, calibrate-world, fit."""
    from socialmirror.paths import ASSETS_DIR
    p = sub.add_parser("bench", help="frames per second of every stage on a video (default: the embedded sample)")
    p.add_argument("input", nargs="?", help="video file or folder of frames")
    p.add_argument("--threads", type=int)
    p.add_argument("--method", default="socialmirror")
    p.add_argument("--json", help="write the report here")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("make-sample", help="regenerate the embedded demo sample (rendered video + ground truth)")
    p.add_argument("-o", "--output", default=str(ASSETS_DIR / "demo"))
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--action", default="handshake")
    p.add_argument("--size", default="960x540", help="WIDTHxHEIGHT of the video (default 960x540, the embedded "
                   "sample's; 1280x720 is bench's reference input)")
    p.set_defaults(func=cmd_make_sample)

    p = sub.add_parser("calibrate-world", help="measure MediaPipe's 3D landmark error on a rendered video of "
                       "known poses (the fit and the simulator read it)")
    p.add_argument("input", nargs="?", help="video (default: the embedded sample)")
    p.add_argument("--truth", help="its ground truth .npz (joints_cam, intrinsics); default: the sample's")
    p.add_argument("-o", "--output", default=str(ASSETS_DIR / "world_landmark_error.json"))
    p.set_defaults(func=cmd_calibrate_world)

    p = sub.add_parser("fit", help="IK-fit the body model to joint-only two-person data (mocap -> parameters)")
    p.add_argument("--data", required=True, help="source: cmu:DIR, butepage:DIR, npz:DIR")
    p.add_argument("--body", default="anny", help="anny (default), smpl:DIR or smplx:DIR")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--fps", type=float, default=None, help="resample before fitting (default: the data's own rate)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-o", "--output", help="write the fitted parameters to this .npz")
    p.set_defaults(func=cmd_fit)


def _check_shared_flags(args) -> None:
    """--seed and --threads, whichever command has them, checked before any work."""
    from socialmirror.config import check_seed, check_threads
    if getattr(args, "seed", None) is not None:
        check_seed(args.seed, "--seed")
    check_threads(getattr(args, "threads", None), "--threads")


@contextlib.contextmanager
def _interrupt_on_sigterm():
    """While the command runs, SIGTERM (a job scheduler, ``kill``, a container stopping) ends it as Ctrl-C
    does: through the cleanup paths, so no temporary file is left beside the outputs. Python's default would
    end the process without running them."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # third-party libraries' progress chatter stays out of normal output
        for name in ("anny", "absl", "sentence_transformers", "transformers"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        _check_shared_flags(args)
        with _interrupt_on_sigterm():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        print("socialmirror: interrupted", file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that turns errors into one line
        if os.environ.get("SOCIALMIRROR_DEBUG"):
            raise
        code = exit_code(exc)
        if code == EXIT_USER_ERROR:
            print(f"socialmirror {args.command}: error: {one_line(exc)}", file=sys.stderr)
        else:
            print(f"socialmirror {args.command}: {one_line(exc)}; rerun with SOCIALMIRROR_DEBUG=1 for the "
                  "traceback", file=sys.stderr)
        return code

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
