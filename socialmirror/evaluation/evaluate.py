"""`socialmirror evaluate`: every method, the same observations, every metric of docs/metrics.md.

Two protocols (``observe``), recorded in the output's ``protocol``:
- ``simulate`` (the default): the methods read the observation model's simulated detections (below).
- ``render``: each sequence is rendered to a video (anny bodies moving like the ground truth, random clothing,
  room and lights, the same seeded camera) and reconstructed by the whole pipeline as ``reconstruct`` does
  (MediaPipe, tracking, the closest pair, draft, annotation, estimate); the pipeline's two people are matched
  to the ground truth's by image overlap. See ``socialmirror.evaluation.render_protocol``; the output adds
  ``detection`` (per data set), ``sequences`` (per-sequence records: camera, appearance, matching, detection
  rate, seconds) and ``skipped``.
``max_frames`` evaluates the middle max_frames / 30 s of each sequence under either protocol.

Simulate protocol:
- Each sequence is resampled to the models' rate (30 fps) and seen through the observation model (a
  seeded camera per sequence from ``CameraSampler`` and detector-like noise) unless the data carries its
  own observations. All methods see exactly the same observation.
- Predictions (camera frame) are interpolated back to the data's own frames and compared there, on the
  joints the ground truth has, by name (a data set's pelvis-less joint set uses the hip midpoint).
- Non-overlapping 16-frame windows with an explicit tail: the last window is aligned to the sequence end
  and only its new frames count, so every frame is scored exactly once. Per-frame metrics (MPJPE, PA-MPJPE,
  R-MPJPE, Int, VPE, Pen) are means over frames; G-MPJPE removes one offset per window; Accel uses the
  interior frames of each window.
- Text and contacts for the methods that use them come from the offline annotator run on the method's own
  semantics-free draft (what `reconstruct` does with no VLM); the ground truth's sentences are never shown.
  The observation enters the pipeline's stages (``socialmirror.pipeline``) where a video's pair would: the
  methods run through the same draft -> annotate -> encode_text -> estimate as ``reconstruct``, sharing one
  draft and one set of annotations per sequence (an in-memory stage cache).
"""
from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from socialmirror import metrics
from socialmirror.body.skeleton import joint_indices
from socialmirror.config import ConfigError, check_device, check_seed, check_threads, differences, update
from socialmirror.evaluation.render_protocol import RenderSettings
from socialmirror.inference.methods import METHOD_PRESETS, MethodConfig, method_config
from socialmirror.windows import CLIP_LENGTH, evaluation_windows

log = logging.getLogger(__name__)
MODEL_FPS = 30.0
METRICS = ("MPJPE", "PA-MPJPE", "R-MPJPE", "G-MPJPE", "Int", "Pen", "Accel", "VPE")
# Where the pair's placement goes wrong (metrics.placement_errors): the pelvis-to-pelvis vector's error along
# the camera ray, sideways and vertically, and each person's depth error (mm).
PLACEMENT = {"depth": "Pair-depth", "lateral": "Pair-lateral", "vertical": "Pair-vertical",
             "person_depth": "Person-depth", "person_height": "Person-height"}
# R-MPJPE over the frames where the pipeline found both people (render protocol: each matched person's box
# IoU with the rendered person at least 0.5): what the 3D stages leave where perception did its part.
FOUND = "R-MPJPE both found"
COLUMNS = METRICS + tuple(PLACEMENT.values()) + (FOUND,)


def _default_method() -> MethodConfig:
    return method_config("socialmirror")


@dataclass
class EvaluateConfig:
    """What ``evaluate`` takes (``socialmirror evaluate``, and the keys of its ``--config`` files and ``--set``
    overrides)."""

    methods: tuple[str, ...] = ("independent", "closeint", "socialmirror")
    # Adjustments applied to every method evaluated: what is changed here relative to the `socialmirror`
    # preset (e.g. method.sampling_steps=10, method.guidance_iterations=2) is changed in each of `methods`.
    method: MethodConfig = field(default_factory=_default_method)
    seed: int = 0
    checkpoint: str | None = None
    text_encoder: str | None = None  # None: the one the bundle's text ControlNet was trained on
    pen_stride: int = 4  # penetration on every n-th frame (the grid SDF costs ~0.2 s a frame)
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads
    progress: bool = True
    max_sequences: int | None = None
    max_frames: int | None = None  # evaluate the middle max_frames / 30 s of each sequence (None: all of it)
    # How the methods see a sequence: "simulate" (the observation model's detections, the default) or "render"
    # (the sequence rendered to a video and reconstructed by the whole pipeline; render_protocol.py).
    observe: Literal["simulate", "render"] = "simulate"
    render: RenderSettings = field(default_factory=RenderSettings)
    render_cache: str | None = None  # rendered videos (default: cache_dir()/eval_renders)
    jobs: int = 1  # render: processes rendering and perceiving ahead of the 3D stages (one torch thread each)

    def __post_init__(self):
        if isinstance(self.method, str):
            self.method = method_config(self.method)
        if self.method.name != "socialmirror":
            raise ConfigError("method.name: evaluate runs the presets of `methods`; `method` only adjusts them "
                              "(method.KEY=VALUE)")
        for name in self.methods:
            if name not in METHOD_PRESETS:
                raise ConfigError(f"methods: unknown method {name!r}; presets: {', '.join(METHOD_PRESETS)}")
        if self.pen_stride < 1:
            raise ConfigError(f"pen_stride: must be at least 1, got {self.pen_stride}")
        if self.jobs < 1:
            raise ConfigError(f"jobs: at least 1, got {self.jobs}")
        check_seed(self.seed)
        check_threads(self.threads)
        check_device(self.device)
        if self.max_frames is not None and self.max_frames < 2:
            raise ConfigError(f"max_frames: at least 2, got {self.max_frames}")

    def method_changes(self) -> dict:
        """The adjustments of ``method`` (nested mapping; empty when none)."""
        return differences(self.method, method_config(self.method.name))

    def method_config(self, name: str) -> MethodConfig:
        """The preset ``name`` with this evaluation's adjustments."""
        return update(method_config(name), self.method_changes(), prefix="method.")


@dataclass
class _Accumulator:
    sums: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)

    def add(self, name: str, value: float, weight: float) -> None:
        if weight <= 0 or not np.isfinite(value):
            return
        self.sums[name] = self.sums.get(name, 0.0) + value * weight
        self.counts[name] = self.counts.get(name, 0.0) + weight

    def merge(self, other: "_Accumulator") -> None:
        for k in other.sums:
            self.sums[k] = self.sums.get(k, 0.0) + other.sums[k]
            self.counts[k] = self.counts.get(k, 0.0) + other.counts[k]

    def means(self) -> dict:
        return {k: round(self.sums[k] / self.counts[k], 2) for k in COLUMNS if self.counts.get(k, 0) > 0}


def _interp_time(x: np.ndarray, src_t: np.ndarray, dst_t: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(src_t), -1)
    out = np.stack([np.interp(dst_t, src_t, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((len(dst_t),) + x.shape[1:])


def score_sequence(pred: np.ndarray, gt: np.ndarray, names, pred_verts=None, faces=None, gt_verts=None,
                   pen_stride: int = 4, found: np.ndarray | None = None) -> _Accumulator:
    """Windowed metrics of one sequence; pred/gt (T, 2, J, 3) at the same frames, camera frame, metres.
    ``found`` (T,) bool: the frames where perception found both people (adds ``FOUND``)."""
    acc = _Accumulator()
    T = gt.shape[0]
    for w in evaluation_windows(T, CLIP_LENGTH):
        frames = w.frames[w.valid]
        new = w.frames[w.new]
        if len(new) == 0:
            continue
        p, g = pred[new], gt[new]
        n = float(len(new))
        kw = dict(joint_names=names)
        acc.add("MPJPE", metrics.mpjpe(p, g, **kw), n)
        acc.add("PA-MPJPE", metrics.pa_mpjpe(p, g, **kw), n)
        acc.add("R-MPJPE", metrics.r_mpjpe(p, g, **kw), n)
        acc.add("Int", metrics.interaction_error(p, g, **kw), n)
        acc.add("G-MPJPE", metrics.g_mpjpe(pred[frames], gt[frames], **kw), n)
        for key, value in metrics.placement_errors(p, g, **kw).items():
            acc.add(PLACEMENT[key], value, n)
        if found is not None and found[new].any():
            both = found[new]
            acc.add(FOUND, metrics.r_mpjpe(p[both], g[both], **kw), float(both.sum()))
        if len(frames) >= 3:
            acc.add("Accel", metrics.accel_error(pred[frames], gt[frames], **kw), max(1.0, n - 2))
        if gt_verts is not None and pred_verts is not None and gt_verts.shape[2] == pred_verts.shape[2]:
            acc.add("VPE", metrics.vertex_error(pred_verts[new], gt_verts[new], pred[new], gt[new], **kw), n)
    if pred_verts is not None and faces is not None:
        idx = np.arange(0, T, max(1, pen_stride))
        pens = [metrics.penetration(pred_verts[t, 0], faces, pred_verts[t, 1], faces) for t in idx]
        acc.add("Pen", float(np.mean(pens)), float(T))
    return acc


@dataclass
class _Case:
    """One sequence as every method sees it: the observation entering ``estimate``, the stage cache that shares
    the semantic inputs between the methods, and how predictions map onto the ground truth."""

    observation: object  # pipeline.PairObservation
    cache: object  # pipeline.StageCache
    gt: np.ndarray  # (T_own, 2, J, 3) camera frame
    gt_verts: np.ndarray | None  # at the data's own frames, camera frame
    order: list = field(default_factory=lambda: [0, 1])  # predicted person order[i] is ground-truth person i
    perception: object = None
    record: dict | None = None  # per-sequence protocol record (render)
    found: np.ndarray | None = None  # (T_own,) bool: both people found (render), at the data's own frames


def _simulated_case(seq, seq30, rng, observer) -> _Case:
    """The observation model's view of the sequence at the models' rate: a ``PairObservation`` with the
    ground truth beside it."""
    from socialmirror import pipeline
    from socialmirror.data.observation import CameraSampler
    camera = CameraSampler().place(seq30, rng)
    observation = observer.observe(seq30, camera, rng=rng)
    gt = camera.to_camera(seq.joints3d).astype(np.float32)
    gt_verts = None if seq.vertices is None else camera.to_camera(seq.vertices).astype(np.float32)
    return _Case(observation, pipeline.StageCache(None), gt, gt_verts)


def evaluate(data_specs: list[str], config: EvaluateConfig | None = None) -> dict:
    """Run every method on every sequence of the specs; returns the JSON document of the issue's layout."""
    run = _Evaluation(config or EvaluateConfig())
    try:
        for spec in data_specs:
            run.evaluate_spec(spec)
    finally:
        run.close()
    return run.document(data_specs)


@dataclass
class _Prepared:
    """A sequence ready to be evaluated: at its own rate and at the models', its camera and appearance draws,
    and (rendering in worker processes) the future of its render and perception."""

    seq: object
    seq30: object
    rng: np.random.Generator
    look: np.random.Generator
    future: object = None


@dataclass
class _Detection:
    """Person-frames of one data set under the render protocol: all, detected, detected correctly."""

    frames: float = 0.0
    hits: float = 0.0
    correct: float = 0.0

    def record(self, sequences: int, skipped: int) -> dict:
        """Rates over the person-frames; the shares where the placement cannot be right whatever the 3D
        stages do: the person missed, or "detected" with a box that is someone else's or both people's
        (IoU < 0.5 against the person's rendered box)."""
        rate = (lambda n: round(n / self.frames, 4) if self.frames else None)
        return {"sequences": sequences, "skipped": skipped, "detection_rate": rate(self.hits),
                "correct_detection_rate": rate(self.correct), "missed_share": rate(self.frames - self.hits),
                "wrong_person_share": rate(self.hits - self.correct)}


class _Evaluation:
    """One ``evaluate`` run: the models and methods, the render cache and workers, and what it has measured."""

    def __init__(self, cfg: EvaluateConfig):
        from socialmirror import pipeline
        from socialmirror.data.observation import ObservationModel
        from socialmirror.evaluation import render_protocol as rp
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.started = time.perf_counter()
        self.models = pipeline.load_models(cfg.checkpoint, cfg.device)
        self.methods = {name: cfg.method_config(name) for name in cfg.methods}
        self.faces = self.models.body.faces.cpu().numpy()
        self.observer = ObservationModel()
        self.render_cache = rp.RenderCache(cfg.render_cache) if cfg.observe == "render" else None
        self.pool = None
        if self.render_cache is not None and cfg.jobs > 1:  # rendering and perception in worker processes
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            self.pool = ProcessPoolExecutor(cfg.jobs, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=rp.worker_init, initargs=(1,))
        self.results, self.per_action, self.detection, self.wall = {}, {}, {}, {}
        self.timing: dict[str, list] = {}
        self.per_sequence: dict[str, list] = {}
        self.skipped: dict[str, list] = {}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    # -- one data set ----------------------------------------------------------------------------------------
    def evaluate_spec(self, spec: str) -> None:
        from socialmirror.data.datasets import sequences_from_spec
        cfg, spec_start = self.cfg, time.perf_counter()
        dataset = spec.split(":", 1)[0] + ":" + Path(spec.split(":", 1)[1]).name if ":" in spec else spec
        sequences = sequences_from_spec(spec, fps=None, seed=cfg.seed)[: cfg.max_sequences or None]
        accs = {m: _Accumulator() for m in cfg.methods}
        act_accs: dict = {}
        detection = _Detection()
        for k, item in enumerate(self._prepare(sequences)):
            case = self._case(item, k, dataset, detection)
            if case is None:
                continue
            self._score_methods(case, item, accs, act_accs, dataset)
            log.info("%s: %d/%d sequences (%.0f s)", dataset, k + 1, len(sequences), time.perf_counter() - spec_start)
        self._summarise(dataset, accs, act_accs)
        if cfg.observe == "render":
            self.detection[dataset] = detection.record(len(sequences), len(self.skipped.get(dataset, [])))
        self.wall[dataset] = round(time.perf_counter() - spec_start, 1)

    def _prepare(self, sequences: list) -> list[_Prepared]:
        """Every sequence clipped, at the models' rate, with its seeded draws; its render submitted to the
        workers where there are any (so they render ahead of the 3D stages)."""
        from socialmirror.data.formats.interchange import resample
        from socialmirror.evaluation import render_protocol as rp
        cfg, prepared = self.cfg, []
        for k, seq in enumerate(sequences):
            seq = rp.clip_sequence(seq, cfg.max_frames, MODEL_FPS)
            seq30 = seq if abs(seq.fps - MODEL_FPS) < 1e-6 else resample(seq, MODEL_FPS)
            rng = np.random.default_rng(cfg.seed * 100003 + k)
            look = np.random.default_rng([cfg.seed, k, zlib.crc32((seq.name or str(k)).encode())])
            future = None
            if self.pool is not None:
                future = self.pool.submit(rp.worker_prepare, seq30, rng, look, cfg.render, self.render_cache.root,
                                          MODEL_FPS)
            prepared.append(_Prepared(seq, seq30, rng, look, future))
        return prepared

    def _case(self, item: _Prepared, k: int, dataset: str, detection: _Detection) -> _Case | None:
        """The observation the methods read (simulated, or rendered and perceived); None when the sequence is
        skipped (recorded, and counted as undetected)."""
        from socialmirror.evaluation import render_protocol as rp
        if self.cfg.observe == "simulate":
            return _simulated_case(item.seq, item.seq30, item.rng, self.observer)
        try:
            rendered = self._rendered(item)
        except rp.SkippedSequence as exc:
            name = item.seq.name or f"sequence {k}"
            log.warning("%s: %s skipped: %s", dataset, name, exc)
            self.skipped.setdefault(dataset, []).append({"sequence": item.seq.name or str(k), "reason": str(exc)})
            detection.frames += 2 * item.seq30.num_frames  # a sequence the pipeline failed on counts as undetected
            return None
        detection.frames += rendered.matching.detected.size
        detection.hits += float(rendered.matching.detected.sum())
        detection.correct += float((rendered.matching.frame_iou >= 0.5).sum())
        return _rendered_case(item.seq, rendered)

    def _rendered(self, item: _Prepared):
        """The render protocol's case for the sequence, here or from a worker."""
        from socialmirror.evaluation import render_protocol as rp
        if item.future is None:
            return rp.prepare_case(item.seq30, self.models.body, item.rng, item.look, self.cfg.render,
                                   self.render_cache, MODEL_FPS)
        rendered, renders, hits = item.future.result()
        self.render_cache.renders += renders
        self.render_cache.hits += hits
        if isinstance(rendered, rp.SkippedSequence):
            raise rendered
        rendered.gt_vertices_cam = rp.exact_vertices(item.seq30, self.models.body, rendered.camera, self.cfg.render)
        return rendered

    def _score_methods(self, case: _Case, item: _Prepared, accs: dict, act_accs: dict, dataset: str) -> None:
        """Every method on the case, scored at the data's own frames; one set of semantic inputs shared."""
        from socialmirror import pipeline
        cfg, models, seq, seq30 = self.cfg, self.models, item.seq, item.seq30
        names, order = list(seq.joint_names), list(case.order)
        t30, t_own = np.arange(seq30.num_frames) / MODEL_FPS, np.arange(seq.num_frames) / seq.fps
        seconds: dict[str, float] = {}

        def semantics():
            t0 = time.perf_counter()
            out = pipeline.semantic_inputs(models, case.observation, case.cache, seed=cfg.seed,
                                           perception=case.perception, text_encoder=cfg.text_encoder,
                                           progress=False)
            seconds.setdefault("semantics", time.perf_counter() - t0)  # the first call computes them
            return out
        for name, method in self.methods.items():
            t0 = time.perf_counter()
            est = pipeline.estimate(models, case.observation, method, case.cache, seed=cfg.seed,
                                    semantics=semantics, progress=False)
            seconds[f"estimate/{name}"] = time.perf_counter() - t0
            self.timing.setdefault(name, []).append((seconds[f"estimate/{name}"], seq30.num_frames))
            pred = _interp_time(est.joints[:, order], t30, t_own)[:, :, joint_indices(names)]
            with torch.no_grad():
                verts30 = est.vertices(models.body)[:, order]
            pverts = _interp_time(verts30, t30, t_own) if seq.fps != MODEL_FPS else verts30
            acc = score_sequence(pred, case.gt, names, pverts, self.faces, case.gt_verts, cfg.pen_stride,
                                 case.found)
            if case.record is not None:
                case.record.setdefault("persons", {})[name] = metrics.person_sizes(pred, case.gt, joint_names=names)
                case.record.setdefault("metrics", {})[name] = acc.means()  # paired comparisons of two runs
            accs[name].merge(acc)
            if seq.action:
                act_accs.setdefault(seq.action, {}).setdefault(name, _Accumulator()).merge(acc)
        if case.record is not None:
            # estimate/M includes the semantic inputs for the first method that reads them ("semantics")
            case.record["seconds"].update({k: round(v, 2) for k, v in seconds.items()})
            self.per_sequence.setdefault(dataset, []).append(case.record)

    def _summarise(self, dataset: str, accs: dict, act_accs: dict) -> None:
        self.results[dataset] = {m: a.means() for m, a in accs.items()}
        if "socialmirror" in accs and "closeint" in accs:
            base, ours = self.results[dataset]["closeint"], self.results[dataset]["socialmirror"]
            self.results[dataset]["improvement_over_closeint_percent"] = {
                k: round(100.0 * (base[k] - ours[k]) / base[k], 1) for k in ours if k in base and base[k] > 0}
        if act_accs:
            self.per_action[dataset] = {a: {m: acc.means() for m, acc in ms.items()} for a, ms in act_accs.items()}

    # -- the document ----------------------------------------------------------------------------------------
    def document(self, data_specs: list[str]) -> dict:
        from socialmirror.evaluation import render_protocol as rp
        cfg = self.cfg
        doc = {"protocol": self._protocol(data_specs), "results": self.results, "per_action": self.per_action}
        if cfg.observe == "render":
            doc["protocol"].update(rp.protocol_record(cfg.render, self.render_cache, cfg.seed))
            doc.update(detection=self.detection, sequences=self.per_sequence, skipped=self.skipped)
        return doc

    def _protocol(self, data_specs: list[str]) -> dict:
        cfg = self.cfg
        fps = {m: round(sum(n for _, n in v) / max(1e-9, sum(s for s, _ in v)), 1) for m, v in self.timing.items()}
        return {
            "observe": cfg.observe,
            "observations": "simulated: socialmirror.data.observation.ObservationModel (default noise), one "
                            "CameraSampler camera per sequence", "seed": cfg.seed, "model_fps": MODEL_FPS,
            "max_frames": cfg.max_frames,
            "clip": "the middle max_frames / 30 s of each sequence" if cfg.max_frames else "whole sequences",
            "windows": f"non-overlapping {CLIP_LENGTH}-frame windows, end-aligned tail scoring only its new frames",
            "joints": "the ground truth's joints, by SMPL-24 name", "units": "mm (Accel: mm/frame^2)",
            "semantics": "offline annotator on the method's semantics-free draft; ground-truth text never used",
            "checkpoint": str(self.models.checkpoint), "methods": list(cfg.methods),
            "method_changes": cfg.method_changes(), "text_encoder": cfg.text_encoder or self.models.text_encoder,
            "data": list(data_specs), "pen_frame_stride": cfg.pen_stride, "frames_per_second": fps,
            "wall_seconds": {**self.wall, "total": round(time.perf_counter() - self.started, 1)},
            "threads": torch.get_num_threads(), "jobs": cfg.jobs if cfg.observe == "render" else 1,
        }


def _rendered_case(seq, rendered) -> _Case:
    """The render protocol's case: ground truth in the rendering camera's frame at the data's own frames."""
    R, t = rendered.camera.R, rendered.camera.t
    gt_verts = rendered.gt_vertices_cam
    if gt_verts is not None and abs(seq.fps - MODEL_FPS) > 1e-6:
        t30, t_own = np.arange(gt_verts.shape[0]) / MODEL_FPS, np.arange(seq.num_frames) / seq.fps
        gt_verts = _interp_time(gt_verts, t30, t_own)
    gt = (np.asarray(seq.joints3d, dtype=np.float64) @ R.T + t).astype(np.float32)
    found30 = (rendered.matching.frame_iou >= 0.5).all(axis=1)
    nearest = np.clip(np.round(np.arange(seq.num_frames) / seq.fps * MODEL_FPS).astype(int), 0, len(found30) - 1)
    return _Case(rendered.observation, rendered.cache, gt, gt_verts, rendered.matching.order, rendered.perception,
                 rendered.record, found30[nearest])


def _placement_table(res: dict) -> list[str]:
    """Where the placement error lies, per method (mm; metrics.placement_errors), and the error where both
    people were found."""
    columns = tuple(PLACEMENT.values()) + (FOUND,)
    rows = [(m, v) for m, v in res.items() if not m.startswith("improvement") and any(k in v for k in columns)]
    if not rows:
        return []
    lines = ["| placement (mm) | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {m} | " + " | ".join(f"{v[k]:.1f}" if k in v else "-" for k in columns) + " |" for m, v in rows]
    return lines + [""]


def to_markdown(doc: dict) -> str:
    lines = []
    for dataset, res in doc["results"].items():
        lines += [f"### {dataset}", "", "| method | " + " | ".join(METRICS) + " |",
                  "|---|" + "---|" * len(METRICS)]
        for method, vals in res.items():
            if method.startswith("improvement"):
                continue
            lines.append(f"| {method} | " + " | ".join(f"{vals[k]:.1f}" if k in vals else "-" for k in METRICS) + " |")
        if "improvement_over_closeint_percent" in res:
            imp = res["improvement_over_closeint_percent"]
            lines.append("| socialmirror vs closeint (% lower) | "
                         + " | ".join(f"{imp[k]:+.1f}" if k in imp else "-" for k in METRICS) + " |")
        lines.append("")
        lines += _placement_table(res)
        detection = doc.get("detection", {}).get(dataset)
        if detection and detection.get("missed_share") is not None:
            lines += [f"Person-frames missed: {100 * detection['missed_share']:.1f}%; detected as someone else "
                      f"(box IoU < 0.5): {100 * detection['wrong_person_share']:.1f}%.", ""]
        for action, ms in doc.get("per_action", {}).get(dataset, {}).items():
            lines.append(f"- {action}: " + "; ".join(
                f"{m} R-MPJPE {v.get('R-MPJPE', float('nan')):.1f}, Int {v.get('Int', float('nan')):.1f}, "
                f"Pen {v.get('Pen', float('nan')):.1f}" for m, v in ms.items()))
        lines.append("")
    return "\n".join(lines)


def write_report(doc: dict, json_path: str | None, markdown_path: str | None) -> None:
    from socialmirror.io import atomic_write_json, atomic_write_text
    if json_path:
        atomic_write_json(json_path, doc)
    if markdown_path:
        atomic_write_text(markdown_path, to_markdown(doc))


__all__ = ["EvaluateConfig", "evaluate", "score_sequence", "to_markdown", "write_report"]
