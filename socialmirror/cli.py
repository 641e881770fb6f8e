"""The ``socialmirror`` command line: a thin layer over the Python API.

Each sub-command is one function here that parses its options and calls into the library; every
failure a user can cause (a missing file, a bad option, missing SMPL files) ends in one line on stderr and
a non-zero exit, never a traceback (set SOCIALMIRROR_DEBUG=1 to see one).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from socialmirror import __version__

log = logging.getLogger("socialmirror")

# Exceptions whose message is meant for the user as it is.
def _user_errors() -> tuple[type[BaseException], ...]:
    from socialmirror.body.base import BodyModelError
    from socialmirror.config import ConfigError
    from socialmirror.errors import InputError
    from socialmirror.data.datasets import DataSpecError
    from socialmirror.data.formats.interchange import InterchangeError
    from socialmirror.inference.estimator import MethodUnavailableError
    from socialmirror.models.bundle import CheckpointError
    from socialmirror.semantics.annotations import AnnotationError
    return (InputError, BodyModelError, ConfigError, FileNotFoundError, InterchangeError, DataSpecError,
            CheckpointError, MethodUnavailableError, AnnotationError)


# ---------------------------------------------------------------------------------------------- setup
def cmd_setup(args) -> int:
    """Build the one-time caches: anny's model cache and MediaPipe's pose task bundle."""
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
    return 0


# ---------------------------------------------------------------------------------------- reconstruct
def _add_reconstruct_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotator", default="offline", help="offline (default) | openai | file:PATH")
    p.add_argument("--vlm-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (key from "
                   "$OPENAI_API_KEY)")
    p.add_argument("--vlm-model", help="model name the VLM server serves")
    p.add_argument("--body", default="anny", help="output body model: anny (default), smpl:DIR, smplx:DIR")
    p.add_argument("--focal", type=float, help="focal length in pixels (default: the image diagonal)")
    p.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"))
    p.add_argument("--checkpoint", help="model weights (default: the shipped ones)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--method", default="socialmirror", help="socialmirror (default), closeint, independent, "
                   "or an ablation (no-text, no-geometry, no-contact, no-refiner)")
    p.add_argument("--no-guidance", nargs="+", default=[], metavar="TERM",
                   choices=["geometry", "contact", "penetration", "reprojection"], help="switch guidance terms off")
    p.add_argument("--fps", type=float, help="frame rate of a folder of frames (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--meshes", choices=["obj"], help="also write per-frame meshes")
    p.add_argument("--no-render", action="store_true", help="skip render.mp4")
    p.add_argument("--no-viewer", action="store_true", help="skip viewer.html")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--force", action="store_true", help="recompute every stage (ignore the cache in OUTDIR)")


def _reconstruct_config(args):
    from socialmirror.api import ReconstructConfig
    return ReconstructConfig(
        annotator=args.annotator, vlm_url=args.vlm_url, vlm_model=args.vlm_model, body=args.body, focal=args.focal,
        intrinsics=tuple(args.intrinsics) if args.intrinsics else None, checkpoint=args.checkpoint,
        device=args.device, method=args.method, disable_guidance=tuple(args.no_guidance), fps=args.fps,
        seed=args.seed, render=not args.no_render, viewer=not args.no_viewer, meshes=args.meshes,
        threads=args.threads)


def _print_result(res) -> None:
    print(f"reconstructed {res.joints3d.shape[0]} frames of the pair (track ids {res.track_ids.tolist()}) "
          f"into {res.output_dir}")
    for name, path in res.files.items():
        print(f"  {name:12s} {path}")
    print(f"  mean reprojection error {res.reprojection_px:.1f} px; time per stage: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in res.timings.items() if "/" not in k))


def cmd_reconstruct(args) -> int:
    from socialmirror.api import reconstruct
    res = reconstruct(args.input, args.output, _reconstruct_config(args), force=args.force)
    _print_result(res)
    return 0


def cmd_annotate(args) -> int:
    from socialmirror.api import annotate
    from socialmirror.api import ReconstructConfig
    cfg = ReconstructConfig(annotator=args.annotator, vlm_url=args.vlm_url, vlm_model=args.vlm_model,
                            focal=args.focal, checkpoint=args.checkpoint, fps=args.fps, seed=args.seed)
    ann = annotate(args.input, args.output, cfg, force=args.force)
    sources = sorted({c.source for c in ann.clips})
    print(f"wrote {args.output}: {len(ann.clips)} clips of 16 frames (sources: {', '.join(sources)}), "
          f"{sum(len(c.contacts) for c in ann.clips)} contacts")
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
    from socialmirror.geometry.ik import IKConfig, fit_joints

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


def cmd_make_sample(args) -> int:
    """Regenerate the embedded demo sample (video + ground truth) from its seed."""
    from socialmirror.render.demo_sample import make_sample
    video, gt = make_sample(args.output, seed=args.seed, action=args.action)
    print(f"wrote {video} ({video.stat().st_size / 1e6:.2f} MB) and {gt}")
    return 0


def cmd_synth(args) -> int:
    from socialmirror.data.synth.cli import synth_main
    return synth_main(args.n, args.output, seed=args.seed, types=args.types, with_vertices=args.vertices)


def cmd_train(args) -> int:
    from socialmirror.training.cli import run_train
    return run_train(args)


def cmd_evaluate(args) -> int:
    from socialmirror.evaluation.evaluate import EvaluateConfig, evaluate, to_markdown, write_report
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    cfg = EvaluateConfig(methods=tuple(args.methods), seed=args.seed, checkpoint=args.checkpoint,
                         max_sequences=args.max_sequences, pen_stride=args.pen_stride)
    doc = evaluate(args.data, cfg)
    write_report(doc, args.json, args.markdown)
    print(to_markdown(doc))
    if args.json:
        print(f"wrote {args.json}" + (f" and {args.markdown}" if args.markdown else ""))
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

    p = sub.add_parser("setup", help="build the one-time caches (anny model, MediaPipe pose bundle)")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("reconstruct", help="video file or folder of frames -> both people's 3D motion")
    p.add_argument("input", help="video file (mp4, avi, mov) or folder of frames")
    p.add_argument("-o", "--output", required=True, help="output folder")
    _add_reconstruct_options(p)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("annotate", help="the VLM Annotator's per-clip sentences and contacts (Table 1 protocol)")
    p.add_argument("input", help="video file or folder of frames")
    p.add_argument("-o", "--output", required=True, help="annotations .json to write")
    p.add_argument("--annotator", default="offline", help="offline (default) | openai | file:PATH")
    p.add_argument("--vlm-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--vlm-model", help="model name the VLM server serves")
    p.add_argument("--focal", type=float)
    p.add_argument("--checkpoint")
    p.add_argument("--fps", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
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
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train a model stage (or 'all': the recipe of the shipped weights)")
    from socialmirror.training.cli import add_train_arguments
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="every method on the same simulated observations, every metric")
    p.add_argument("--data", action="append", required=True,
                   help="npz:DIR, cmu:DIR, butepage:DIR, synth:N, hi4d:DIR, 3dpw.test:DIR, ... (repeatable)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", help="write the tables here")
    p.add_argument("--methods", nargs="+", default=["independent", "closeint", "socialmirror"],
                   help="independent closeint socialmirror socialmirror-linear no-text no-geometry no-contact "
                        "no-refiner")
    p.add_argument("--checkpoint", help="model weights (default: the shipped ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-sequences", type=int, help="evaluate at most this many sequences per data set")
    p.add_argument("--pen-stride", type=int, default=4, help="penetration on every n-th frame")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="frames per second of every stage on a video (default: the embedded sample)")
    p.add_argument("input", nargs="?", help="video file or folder of frames")
    p.add_argument("--threads", type=int)
    p.add_argument("--method", default="socialmirror")
    p.add_argument("--json", help="write the report here")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("make-sample", help="regenerate the embedded demo sample (rendered video + ground truth)")
    from socialmirror.paths import ASSETS_DIR
    p.add_argument("-o", "--output", default=str(ASSETS_DIR / "demo"))
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--action", default="handshake")
    p.set_defaults(func=cmd_make_sample)

    p = sub.add_parser("fit", help="IK-fit the body model to joint-only two-person data (mocap -> parameters)")
    p.add_argument("--data", required=True, help="source: cmu:DIR, butepage:DIR, npz:DIR")
    p.add_argument("--body", default="anny", help="anny (default), smpl:DIR or smplx:DIR")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--fps", type=float, default=None, help="resample before fitting (default: the data's own rate)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-o", "--output", help="write the fitted parameters to this .npz")
    p.set_defaults(func=cmd_fit)
    return parser


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
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("socialmirror: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that turns errors into one line
        if os.environ.get("SOCIALMIRROR_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, _user_errors()):
            print(f"socialmirror {args.command}: error: {message}", file=sys.stderr)
            return 2
        print(f"socialmirror {args.command}: internal error ({type(exc).__name__}: {message}); "
              "rerun with SOCIALMIRROR_DEBUG=1 for the traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
