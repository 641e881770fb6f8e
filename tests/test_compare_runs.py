"""scripts/compare_runs.py: two evaluation runs paired by sequence, with the sign test by hand."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("compare_runs", Path(__file__).parents[1] / "scripts" / "compare_runs.py")
compare_runs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compare_runs)


def test_sign_test_against_hand_values():
    assert compare_runs.sign_test(0, 5) == pytest.approx(2 / 32)  # all five one way: 2 * (1/2)^5
    assert compare_runs.sign_test(1, 4) == pytest.approx(2 * 6 / 32)  # 2 * (C(5,0) + C(5,1)) / 2^5
    assert compare_runs.sign_test(3, 3) == 1.0 and compare_runs.sign_test(0, 0) == 1.0


def _run(path: Path, scores: dict[str, float]) -> str:
    records = [{"sequence": name, "metrics": {"socialmirror": {"R-MPJPE": value}}} for name, value in scores.items()]
    path.write_text(json.dumps({"sequences": {"npz:val": records}}))
    return str(path)


def test_runs_are_paired_by_sequence(tmp_path, capsys, monkeypatch):
    a = _run(tmp_path / "a.json", {"s0": 200.0, "s1": 900.0, "s2": 250.0, "only_a": 1.0})
    b = _run(tmp_path / "b.json", {"s2": 240.0, "s0": 190.0, "s1": 1000.0})  # better on two, one gross failure
    monkeypatch.setattr("sys.argv", ["compare_runs", a, "--against", b])
    compare_runs.main()
    out = capsys.readouterr().out
    assert "npz:val: 3 sequences; B better on 2, worse on 1" in out
    assert "median -10.0, mean +26.7 (A 450.0, B 476.7)" in out


def test_two_methods_of_one_run_are_paired_by_sequence(tmp_path, capsys, monkeypatch):
    records = [{"sequence": name, "metrics": {"socialmirror": {"R-MPJPE": full}, "no-text": {"R-MPJPE": ablated}}}
               for name, full, ablated in (("s0", 200.0, 220.0), ("s1", 300.0, 310.0), ("s2", 250.0, 240.0))]
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"sequences": {"npz:val": records}}))
    monkeypatch.setattr("sys.argv", ["compare_runs", str(run), "--against", str(run), "--against-method", "no-text"])
    compare_runs.main()
    out = capsys.readouterr().out
    assert "npz:val: 3 sequences; B better on 1, worse on 2" in out
    assert "median +10.0, mean +6.7 (A 250.0, B 256.7)" in out
