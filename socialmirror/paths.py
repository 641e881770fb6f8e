"""Where the project keeps its caches and shipped assets.

The cache folder holds expensive one-time work (anny's first-use model cache, MediaPipe's task bundle,
text embeddings). It defaults to ``~/.cache/socialmirror`` and moves with ``SOCIALMIRROR_CACHE``.
"""
from __future__ import annotations

import os
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent / "assets"


def cache_dir() -> Path:
    root = os.environ.get("SOCIALMIRROR_CACHE")
    if root:
        path = Path(root).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser()
        path = base / "socialmirror"
    path.mkdir(parents=True, exist_ok=True)
    return path


def anny_cache_dir() -> Path:
    return cache_dir() / "anny"
