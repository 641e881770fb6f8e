"""``socialmirror batch``: every video of a folder reconstructed into a folder of its own.

Inputs are the folder's video files (``perception.video.VIDEO_EXTENSIONS``) and its subfolders of image
frames, in name order; each goes to ``OUT_DIR/<name>`` (the file's stem; the extension is kept where two
inputs share a stem) through ``api.reconstruct`` with one config. A video that fails is reported with its
one-line reason and the others go on. Each output folder holds its own stage cache, so a batch run again (after
an interruption, a crash or a fix to one video) redoes only what is missing or changed. The summary
(``OUT_DIR/batch_summary.json``, rewritten after every video, and a table on stdout) lists every input with
its status, frames, seconds and the stages read from the cache.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from socialmirror.errors import EXIT_INTERNAL, InputError, exit_code, user_message
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
              report=print) -> list[BatchItem]:
    """Reconstruct every input of ``input_dir`` into ``output_dir/<name>``; returns one item per input."""
    from socialmirror.api import ReconstructConfig, reconstruct
    cfg = config or ReconstructConfig()
    inputs = find_inputs(input_dir)
    out = output_folder(output_dir)
    items = [BatchItem(str(p), str(out / name)) for p, name in zip(inputs, output_names(inputs))]
    for k, item in enumerate(items):
        report(f"[{k + 1}/{len(items)}] {item.input} -> {item.output}")
        t0 = time.perf_counter()
        try:
            res = reconstruct(item.input, item.output, cfg, force=force)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - one video's failure must not stop the others
            internal = exit_code(exc) == EXIT_INTERNAL
            item.status = "failed"
            item.message = f"internal error ({type(exc).__name__}: {user_message(exc)})" if internal \
                else user_message(exc)
            report(f"  failed: {item.message}")
        else:
            item.status, item.frames = "done", int(res.joints3d.shape[0])
            item.reused = [stage for stage, outcome in res.cache.items() if outcome == "hit"]
        item.seconds = round(time.perf_counter() - t0, 1)
        atomic_write_json(out / SUMMARY_NAME, {"input": str(input_dir), "items": [asdict(i) for i in items]})
    return items


def format_summary(items: list[BatchItem]) -> str:
    """A markdown table of the items."""
    lines = ["| input | status | frames | seconds | from cache | message |", "|---|---|---|---|---|---|"]
    for i in items:
        lines.append(f"| {Path(i.input).name} | {i.status} | {i.frames} | {i.seconds:.1f} | "
                     f"{', '.join(i.reused) or '-'} | {i.message} |")
    return "\n".join(lines)


__all__ = ["BatchItem", "SUMMARY_NAME", "find_inputs", "format_summary", "output_names", "run_batch"]
