"""``socialmirror cross-dataset``: the paper's Table 4, each bundle trained on some data sets and evaluated on
the others.

    socialmirror cross-dataset --dataset synthesized=npz:/tmp/sm_train \\
        --dataset cmu=cmu:../shared/data/cmu_18_19 --dataset butepage=butepage:../shared/data/butepage_hhi@0.5 \\
        --train synthesized --train synthesized+butepage --minutes 25 --out /tmp/table4 --observe render

Each ``--train A+B`` is a source: the named data sets trained on together (their specs joined, weights kept)
by the recipe of the shipped weights (``train all``) into ``OUT/A+B.pt``. The bundle is then evaluated with
``closeint`` and ``socialmirror`` (both read the same bundle) on every data set outside its source, so no row
ever scores data its bundle saw. A data set's ``@WEIGHT`` only matters for training.

The command resumes: a bundle whose recipe is finished is used as it is, an interrupted one continues from its
checkpoints (``OUT/A+B.pt.train/``), and an evaluation already written with the same settings
(``OUT/evaluations/A+B--on--C--PROTOCOL.json``) is read back instead of run again, so both protocols can be measured
with the same bundles. It writes ``OUT/table4-PROTOCOL.json`` (``simulate`` or ``render``; per target data set,
per source, per method: every metric of ``evaluate``) and ``OUT/table4-PROTOCOL.md``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from socialmirror.data.datasets import split_data_spec
from socialmirror.errors import InputError
from socialmirror.evaluation.evaluate import METRICS, EvaluateConfig, evaluate
from socialmirror.io import atomic_write_json, atomic_write_text

TABLE_METHODS = ("closeint", "socialmirror")


class PlanError(InputError):
    """A cross-dataset plan that cannot run; the message says which argument is at fault."""


@dataclass(frozen=True)
class CrossDatasetPlan:
    """Named data specs and the sources trained on (each a tuple of those names)."""

    datasets: dict[str, str]
    sources: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, datasets: Sequence[str], sources: Sequence[str]) -> "CrossDatasetPlan":
        """``datasets``: ``NAME=SPEC`` each; ``sources``: ``NAME[+NAME...]`` each."""
        named: dict[str, str] = {}
        for item in datasets:
            name, eq, spec = item.partition("=")
            if not eq or not name.strip() or not spec.strip():
                raise PlanError(f"--dataset {item!r}: expected NAME=SPEC, e.g. cmu=cmu:../shared/data/cmu_18_19")
            if "+" in name or name.strip() in named:
                raise PlanError(f"--dataset {item!r}: names are unique and have no '+'")
            split_data_spec(spec)  # a malformed weight fails now, not after a training run
            named[name.strip()] = spec.strip()
        parsed = []
        for item in sources:
            names = tuple(n.strip() for n in item.split("+"))
            unknown = [n for n in names if n not in named]
            if unknown:
                raise PlanError(f"--train {item!r}: unknown data set {unknown[0]!r} (given: {', '.join(named)})")
            if len(set(names)) != len(names):
                raise PlanError(f"--train {item!r}: a data set named twice")
            if set(names) == set(named):
                raise PlanError(f"--train {item!r}: trains on every data set, so nothing is left to evaluate on")
            parsed.append(names)
        if not parsed:
            raise PlanError("give at least one --train source")
        return cls(named, tuple(parsed))

    @staticmethod
    def source_name(source: Sequence[str]) -> str:
        return "+".join(source)

    def training_spec(self, source: Sequence[str]) -> str:
        return ",".join(self.datasets[n] for n in source)

    def targets(self, source: Sequence[str]) -> list[str]:
        return [n for n in self.datasets if n not in source]

    def evaluation_spec(self, name: str) -> str:
        """The data set's spec without its training weight."""
        return ",".join(spec for spec, _ in split_data_spec(self.datasets[name]))


@dataclass(frozen=True)
class TrainingSettings:
    """How each bundle is trained: ``train all``'s budget (``minutes`` or ``steps``), threads, seed and
    ``overrides`` (``model.*`` / ``train.*`` of its config)."""

    minutes: float | None = None
    steps: int | None = None
    threads: int | None = None
    seed: int = 0
    overrides: tuple[str, ...] = ()


def run_cross_dataset(plan: CrossDatasetPlan, out: str | Path, training: TrainingSettings,
                      config: EvaluateConfig, report: Callable[[str], None] = print) -> dict:
    """Train what is not trained yet, evaluate what is not evaluated yet, write and return the table."""
    out = Path(out)
    (out / "evaluations").mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(config, methods=TABLE_METHODS)
    results: dict[str, dict[str, dict]] = {target: {} for target in plan.datasets}
    for source in plan.sources:
        name = plan.source_name(source)
        bundle = _trained_bundle(plan, source, out, training, report)
        for target in plan.targets(source):
            doc = _evaluation(plan, name, target, bundle, config, out, report)
            (scores,) = doc["results"].values()
            results[target][name] = {m: scores[m] for m in TABLE_METHODS if m in scores}
    table = {"datasets": plan.datasets, "evaluated_as": {n: plan.evaluation_spec(n) for n in plan.datasets},
             "sources": [plan.source_name(s) for s in plan.sources],
             "training": dataclasses.asdict(training), "evaluation": _settings(config),
             "results": {t: r for t, r in results.items() if r}}
    atomic_write_json(out / f"table4-{config.observe}.json", table)
    atomic_write_text(out / f"table4-{config.observe}.md", to_markdown(table))
    return table


def _trained_bundle(plan: CrossDatasetPlan, source: Sequence[str], out: Path, training: TrainingSettings,
                    report: Callable[[str], None]) -> Path:
    from socialmirror.training.trainer import recipe_finished, train_main
    path = out / f"{plan.source_name(source)}.pt"
    if recipe_finished(path, training.overrides):
        report(f"{path.name}: trained already; used as it is")
        return path
    report(f"{path.name}: training on {plan.training_spec(source)}")
    train_main("all", plan.training_spec(source), training.steps, path, resume=True, seed=training.seed,
               overrides=training.overrides, threads=training.threads, minutes=training.minutes, report=report)
    return path


def _settings(config: EvaluateConfig) -> dict:
    """What an evaluation's figures depend on besides the bundle (a written evaluation is reused only when
    these agree)."""
    keys = ("methods", "seed", "max_sequences", "max_frames", "observe", "pen_stride")
    return {"method_changes": config.method_changes(), "render": dataclasses.asdict(config.render),
            **{k: getattr(config, k) for k in keys}}


def _evaluation(plan: CrossDatasetPlan, source_name: str, target: str, bundle: Path, config: EvaluateConfig,
                out: Path, report: Callable[[str], None]) -> dict:
    from socialmirror.pipeline.cache import file_fingerprint
    path = out / "evaluations" / f"{source_name}--on--{target}--{config.observe}.json"
    # As they read back from the file; a retrained bundle has another modification time.
    settings = json.loads(json.dumps(_settings(config)))
    weights = json.loads(json.dumps(file_fingerprint(bundle)))
    if path.is_file():
        written = json.loads(path.read_text())
        if written.get("settings") == settings and written.get("bundle") == weights:
            report(f"{path.name}: evaluated already; read back")
            return written["doc"]
    report(f"evaluating {bundle.name} on {target} ({plan.evaluation_spec(target)})")
    doc = evaluate([plan.evaluation_spec(target)], dataclasses.replace(config, checkpoint=str(bundle)))
    atomic_write_json(path, {"settings": settings, "bundle": weights, "doc": doc})
    return doc


def to_markdown(table: dict) -> str:
    """One table per target data set: a row per (method, source)."""
    lines = []
    for target, by_source in table["results"].items():
        lines += [f"### evaluated on {target} ({table['evaluated_as'][target]})", "",
                  "| method | trained on | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
        for method in TABLE_METHODS:
            for source, scores in by_source.items():
                vals = scores.get(method)
                if vals is None:
                    continue
                lines.append(f"| {method} | {source} | "
                             + " | ".join(f"{vals[k]:.1f}" if k in vals else "-" for k in METRICS) + " |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["CrossDatasetPlan", "PlanError", "TrainingSettings", "run_cross_dataset", "to_markdown"]
