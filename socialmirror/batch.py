"""``socialmirror batch``: every video of a folder reconstructed into a folder of its own.

Inputs are the folder's video files (``perception.video.VIDEO_EXTENSIONS``) and its subfolders of image
frames, in name order; each goes to ``OUT_DIR/<name>`` (the file's stem; the extension is kept where two
inputs share a stem) through ``api.reconstruct`` with one config. A video that fails is reported with its
one-line reason and the others go on. Each output folder holds its own stage cache, so a batch run again (after
an interruption, a crash or a fix to one video) redoes only what is missing or changed. The summary
(``OUT_DIR/batch_summary.json``, rewritten after every video, and a table on stdout) lists every input with
its status, frames, seconds and the stages read from the cache. ``--ray`` runs the videos as tasks on a Ray
cluster (``--ray-address``; a local one by default), each the same call as the plain run.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from socialmirror.errors import InputError, one_line
from socialmirror.io import atomic_write_json, output_folder

SUMMARY_NAME = "batch_summary.json"


@dataclass
class BatchItem:
    input: str
    output: str
    status: str = "pending"  # done | failed
    frames: int = 0
    seconds: float = 0.0
    reused: list[str] = field(default_factory=list)  # stages read from the output folder's cache
    message: str = ""  # why it failed


def find_inputs(folder: str | Path) -> list[Path]:
    """The videos of ``folder``: its video files and its subfolders that hold image frames, by name."""
    from socialmirror.perception.video import VIDEO_EXTENSIONS, list_frame_files
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"batch input must be a folder of videos, got {folder}")
    found = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".") and (
        (p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS) or (p.is_dir() and list_frame_files(p)))]
    if not found:
        raise InputError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) or folders of frames in {folder}")
    return found


def output_names(inputs: list[Path]) -> list[str]:
    """Each input's output folder name: its stem, or its full name where two inputs share a stem."""
    stems = [p.stem if p.is_file() else p.name for p in inputs]
    return [p.name if stems.count(stem) > 1 else stem for p, stem in zip(inputs, stems)]


def run_batch(input_dir: str | Path, output_dir: str | Path, config=None, force: bool = False,
              report=print, ray: bool = False, ray_address: str | None = None) -> list[BatchItem]:
    """Reconstruct every input of ``input_dir`` into ``output_dir/<name>``; returns one item per input. With
    ``ray`` the videos run as Ray tasks (a local Ray, or the cluster at ``ray_address``), each the same call
    as here, so the results are the plain run's."""
    from socialmirror.api import ReconstructConfig
    cfg = config or ReconstructConfig()
    inputs = find_inputs(input_dir)
    out = output_folder(output_dir)
    items = [BatchItem(str(p), str(out / name)) for p, name in zip(inputs, output_names(inputs))]

    def finished(k: int, outcome: dict) -> None:
        item = items[k]
        for key, value in outcome.items():
            setattr(item, key, value)
        report(f"[{sum(i.status != 'pending' for i in items)}/{len(items)}] {item.input} -> {item.output}: "
               f"{item.status}" + (f" ({item.message})" if item.message else ""))
        atomic_write_json(out / SUMMARY_NAME, {"input": str(input_dir), "items": [asdict(i) for i in items]})
    if ray:
        _run_on_ray(items, cfg, force, ray_address, finished)
    else:
        for k, item in enumerate(items):
            finished(k, reconstruct_one(item.input, item.output, cfg, force))
    return items


def reconstruct_one(video: str, output: str, config, force: bool = False) -> dict:
    """One video of a batch: ``api.reconstruct``, its failure caught and described in one line. Returns the
    item's fields (status, frames, seconds, reused, message)."""
    from socialmirror.api import reconstruct
    t0 = time.perf_counter()
    try:
        res = reconstruct(video, output, config, force=force)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - one video's failure must not stop the others
        return {"status": "failed", "message": one_line(exc), "seconds": round(time.perf_counter() - t0, 1)}
    return {"status": "done", "frames": int(res.joints3d.shape[0]), "seconds": round(time.perf_counter() - t0, 1),
            "reused": [stage for stage, outcome in res.cache.items() if outcome == "hit"]}


def _run_on_ray(items: list[BatchItem], config, force: bool, address: str | None, finished) -> None:
    """Every item as a Ray task of ``reconstruct_one`` (one CPU each), reported as each finishes."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'socialmirror[ray]' (or ray itself)") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(num_cpus=1)(reconstruct_one)
        pending = {task.remote(i.input, i.output, config, force): k for k, i in enumerate(items)}
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            finished(pending.pop(done), ray.get(done))
    finally:
        if started_here:
            ray.shutdown()


def format_summary(items: list[BatchItem]) -> str:
    """A markdown table of the items."""
    lines = ["| input | status | frames | seconds | from cache | message |", "|---|---|---|---|---|---|"]
    for i in items:
        lines.append(f"| {Path(i.input).name} | {i.status} | {i.frames} | {i.seconds:.1f} | "
                     f"{', '.join(i.reused) or '-'} | {i.message} |")
    return "\n".join(lines)


__all__ = ["BatchItem", "SUMMARY_NAME", "find_inputs", "format_summary", "output_names", "reconstruct_one",
           "run_batch"]
