"""Shared test set-up: one CPU thread, seeded RNGs, and the path of the optional shared data."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

SHARED_DATA = Path(os.environ.get("SOCIALMIRROR_SHARED_DATA",
                                  Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a clean skip where it is absent (it is never part of the project)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def anny_body():
    """The default body model, built once per test session (its cache is made by `socialmirror setup`)."""
    from socialmirror.body import build_body_model
    return build_body_model("anny")
