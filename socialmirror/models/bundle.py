"""The model bundle: every trained network of the method in one checkpoint file.

``ModelBundle`` holds
  ``initial``      InitialEstimator (step 4): F_img -> x_init per person, per frame (raw units, camera frame);
                   an InitialEnsemble of several with ``initial.members`` > 1;
  ``geometry``     GeometryOptimizer (step 5): both persons' joints -> refined camera-frame joints (metres);
  ``infiller``     SemanticMotionInfiller (step 6): base denoiser + text ControlNet, in NORMALISED x;
  ``independent``  (optional) the ``independent`` baseline's denoiser: the infiller without cross-attention
                   and without text, trained the same way (the ``closeint`` baseline needs no network of its
                   own: it is ``infiller`` called without text, which after the ControlNet phase is exactly
                   the phase-1 base model because the base is frozen);
  ``refiner``      TemporalMotionRefiner (step 7), in NORMALISED x;
  ``geometry_linear`` (optional, ``config.geometry_linear``) the Geometry Optimizer of the ablation of
                   Table 2: the ``geometry`` network with the Linear motion embedding instead of the STGCN,
                   trained the same way (stage ``geometry_linear``), read by the ``socialmirror-linear``
                   method; ``None`` when the bundle has none (bundles written before the slot existed);
and the buffers the networks were trained with:
  ``x_mean``, ``x_std`` (D)  motion normalisation, x_norm = (x - x_mean) / x_std, from the training targets;
  ``sigma`` (D)              the diffusion noise std per dimension in normalised units: the std of
                             x0 - x_init over the training data (the spread of the initial estimate's error,
                             the paper's "eps ~ N(0, sigma)" of Eq. 2).

Checkpoint file (``save_bundle`` / ``load_bundle``): a torch file holding a dict
``{"format": "socialmirror.bundle", "version": 1, "config": <ModelBundleConfig as a dict>, "state_dict",
"metadata"}``; parameters may be stored in float16 (halves the file) and are cast back on loading. A
missing, unreadable or mismatched file raises ``CheckpointError`` with a one-line message. The optional
``geometry_linear`` slot is present in a loaded bundle exactly when the file holds its tensors (whatever the
stored config's flag says): an older file without it loads, with the slot ``None``.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from torch import Tensor, nn

from socialmirror.body.motion import MotionRepresentation
from socialmirror.config import ConfigError, to_dict, update
from socialmirror.diffusion.sampler import DDIMSampler, SamplerConfig
from socialmirror.diffusion.schedule import InitialDistributionDiffusion, NoiseSchedule
from socialmirror.errors import InputError
from socialmirror.io import atomic_write_bytes
from socialmirror.models.features import (WORLD_FEATURE_DIM, observation_feature_dim, observation_features,
                                          world_landmark_features)
from socialmirror.models.geometry_optimizer import GeometryOptimizer, GeometryOptimizerConfig
from socialmirror.models.infiller import InfillerConfig, SemanticMotionInfiller
from socialmirror.models.initial_estimator import (InitialEnsemble, InitialEstimatorConfig, build_initial_estimator,
                                                   estimators)
from socialmirror.models.refiner import RefinerConfig, TemporalMotionRefiner
from socialmirror.paths import ASSETS_DIR
from socialmirror.windows import CLIP_LENGTH

BUNDLE_FORMAT = "socialmirror.bundle"
BUNDLE_VERSION = 1


class CheckpointError(InputError):
    """A checkpoint that is missing, unreadable or does not match the expected model (one-line message)."""


@dataclass
class DiffusionConfig:
    """The diffusion the infiller was trained with. How many steps sampling takes is not part of it: that is an
    inference-time choice of the method (``MethodConfig.sampling_steps``)."""

    num_train_timesteps: int = 100
    beta_schedule: Literal["cosine", "linear"] = "cosine"


# Keys that configs stored by earlier versions hold and this version no longer has, with where they went.
# They are dropped on loading, so those bundles load unchanged.
RETIRED_CONFIG_KEYS: tuple[tuple[str, ...], ...] = (
    ("diffusion", "sampling_steps"),  # now MethodConfig.sampling_steps (socialmirror.inference.methods)
)


@dataclass
class ModelBundleConfig:
    body: str = "anny"  # body model kind the motions are in: anny | smpl | smplx
    clip_len: int = CLIP_LENGTH  # L
    shape_dim: int = 6  # anny's phenotypes (SMPL: 10 betas)
    image_embedding_dim: int = 0  # width of optional image features appended to F_img (0: keypoints only)
    # F_img also holds MediaPipe's root-relative 3D (models.features). Off for a bare ModelBundle and for
    # configs stored before the field existed (they were trained without it); the trainer's default turns it on.
    world_landmarks: bool = False
    initial: InitialEstimatorConfig = field(default_factory=InitialEstimatorConfig)
    geometry: GeometryOptimizerConfig = field(default_factory=GeometryOptimizerConfig)
    infiller: InfillerConfig = field(default_factory=InfillerConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    # The frozen sentence encoder the text ControlNet was trained on (``get_text_encoder`` spec): part of the
    # trained model, so inference reads it from here. Bundles stored before the field existed used MiniLM.
    text_encoder: str = "minilm"
    independent_baseline: bool = True  # also hold the `independent` baseline's denoiser
    # Also hold the Linear-embedding Geometry Optimizer (Table 2's ablation). Off for a bare ModelBundle (and
    # for configs stored before the slot existed); the trainer's default config turns it on.
    geometry_linear: bool = False

    @property
    def motion_dim(self) -> int:
        return MotionRepresentation(self.shape_dim).dim

    @property
    def img_dim(self) -> int:
        return observation_feature_dim(self.image_embedding_dim, self.world_landmarks)

    def resolved(self) -> "ModelBundleConfig":
        """A copy with every derived width (D, F_img width, shape size) written into the sub-configs, so the
        networks always agree with each other and with the body model."""
        r = dataclasses.replace
        return r(self,
                 initial=r(self.initial, shape_dim=self.shape_dim, img_dim=self.img_dim),
                 geometry=r(self.geometry, img_dim=self.img_dim),
                 infiller=r(self.infiller, motion_dim=self.motion_dim, img_dim=self.img_dim),
                 refiner=r(self.refiner, motion_dim=self.motion_dim))

    def geometry_linear_config(self) -> GeometryOptimizerConfig:
        """The ablation's Geometry Optimizer: ``geometry`` with the Linear motion embedding."""
        return dataclasses.replace(self.resolved().geometry, embedding="linear")

    def independent_config(self) -> InfillerConfig:
        """The `independent` baseline: the infiller without cross-attention and without text."""
        return dataclasses.replace(self.resolved().infiller, cross_attention=False, controlnet=False)


class ModelBundle(nn.Module):
    def __init__(self, config: ModelBundleConfig | None = None):
        super().__init__()
        self.config = config = (config or ModelBundleConfig()).resolved()
        self.representation = MotionRepresentation(config.shape_dim)
        self.initial = build_initial_estimator(config.initial)
        self.geometry = GeometryOptimizer(config.geometry)
        self.infiller = SemanticMotionInfiller(config.infiller)
        self.independent = (SemanticMotionInfiller(config.independent_config())
                            if config.independent_baseline else None)
        self.refiner = TemporalMotionRefiner(config.refiner)
        # Built last so that adding the slot leaves the other networks' initial weights (RNG draws) unchanged.
        self.geometry_linear = (GeometryOptimizer(config.geometry_linear_config())
                                if config.geometry_linear else None)
        dim = config.motion_dim
        self.register_buffer("x_mean", torch.zeros(dim))
        self.register_buffer("x_std", torch.ones(dim))
        self.register_buffer("sigma", torch.ones(dim))
        # What training produced this bundle (stages and their steps, data, time); saved with the weights.
        self.metadata: dict[str, Any] = {}

    @property
    def motion_dim(self) -> int:
        return self.config.motion_dim

    def add_geometry_linear(self) -> GeometryOptimizer:
        """The ``geometry_linear`` slot, created (new weights, on the device of ``geometry``) if the bundle
        has none, e.g. one loaded from a file written before the slot existed."""
        if self.geometry_linear is None:
            self.config = dataclasses.replace(self.config, geometry_linear=True)
            device = next(self.geometry.parameters()).device
            self.geometry_linear = GeometryOptimizer(self.config.geometry_linear_config()).to(device)
        return self.geometry_linear

    # -- normalisation ------------------------------------------------------------------------------------
    @torch.no_grad()
    def set_statistics(self, x_mean: Tensor, x_std: Tensor, sigma: Tensor) -> None:
        self.x_mean.copy_(x_mean)
        self.x_std.copy_(x_std)
        self.sigma.copy_(sigma)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.x_mean) / self.x_std

    def denormalize(self, x_norm: Tensor) -> Tensor:
        return x_norm * self.x_std + self.x_mean

    # -- diffusion ----------------------------------------------------------------------------------------
    def diffusion(self) -> InitialDistributionDiffusion:
        d = self.config.diffusion
        return InitialDistributionDiffusion(NoiseSchedule(d.num_train_timesteps, d.beta_schedule),
                                            sigma=self.sigma.detach().cpu())

    def sampler(self, config: SamplerConfig | None = None) -> DDIMSampler:
        """A DDIM sampler of this bundle's diffusion (default: the sampler's default settings)."""
        return DDIMSampler(self.diffusion(), config or SamplerConfig())

    # -- observations -------------------------------------------------------------------------------------
    def observation_features(self, keypoints2d: Tensor, boxes: Tensor, K: Tensor,
                             world_joints: Tensor | None = None, world_confidence: Tensor | None = None,
                             image_embedding: Tensor | None = None) -> Tensor:
        """F_img (B, 2, L, img_dim) for this bundle (see ``socialmirror.models.features``). MediaPipe's 3D
        (world_joints (B, 2, L, 24, 3), world_confidence (B, 2, L, 24)) is read when the bundle was trained
        with it; None there means "no 3D evidence" (zeros, as the networks saw in training)."""
        if (image_embedding is None) != (self.config.image_embedding_dim == 0):
            raise ValueError(f"this bundle expects image embeddings of width {self.config.image_embedding_dim}")
        world = None
        if self.config.world_landmarks:
            if world_joints is None:
                world = keypoints2d.new_zeros(*keypoints2d.shape[:-2], WORLD_FEATURE_DIM)
            else:
                world = world_landmark_features(world_joints.to(keypoints2d), None if world_confidence is None
                                                else world_confidence.to(keypoints2d))
        return observation_features(keypoints2d, boxes, K, image_embedding, world)


# ------------------------------------------------------------------------------------------- checkpoints
def default_bundle_path() -> Path:
    return ASSETS_DIR / "weights" / "socialmirror_anny.pt"


def join_initial_estimators(bundle: ModelBundle, others: Sequence[ModelBundle]) -> ModelBundle:
    """``bundle`` with the initial estimators of ``others`` added to its own as members of one
    ``InitialEnsemble`` (in place; returned), every other network its own: how a bundle trained with one
    initial estimator gets an ensemble without retraining the stages after it. The members must share one
    architecture and read the same F_img; the bundle's metadata lists each member's training record."""
    single = dataclasses.replace(bundle.config.initial, members=1)
    for other in others:
        if dataclasses.replace(other.config.initial, members=1) != single:
            raise CheckpointError(f"the initial estimators differ: {other.config.initial} vs {bundle.config.initial}")
    members = [m for b in (bundle, *others) for m in estimators(b.initial)]
    records = [r for b in (bundle, *others) for r in _initial_records(b)]
    config = dataclasses.replace(single, members=len(members))
    bundle.config = dataclasses.replace(bundle.config, initial=config)
    bundle.initial = InitialEnsemble(config, members)
    stages = bundle.metadata.setdefault("stages", {})
    stages["initial"] = {**stages.get("initial", {}), "members": records}
    return bundle


def _initial_records(bundle: ModelBundle) -> list[dict]:
    """The training record of each of the bundle's initial estimators."""
    record = bundle.metadata.get("stages", {}).get("initial", {})
    return record.get("members") or [record]


def save_bundle(bundle: ModelBundle, path: str | Path, half: bool = True,
                metadata: dict[str, Any] | None = None) -> Path:
    """Write the bundle atomically. ``half``: store parameters in float16 (buffers stay float32: the
    normalisation statistics are small and want the precision)."""
    params = {name for name, _ in bundle.named_parameters()}
    state = {}
    for name, tensor in bundle.state_dict().items():
        tensor = tensor.detach().cpu()
        state[name] = tensor.half() if half and name in params and tensor.is_floating_point() else tensor
    payload = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "config": to_dict(bundle.config),
               "state_dict": state, "metadata": {**bundle.metadata, **(metadata or {})}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {vb!r} in the checkpoint, {va!r} expected")
    return out


def _check_state(bundle: ModelBundle, state: dict[str, Tensor], path: Path) -> None:
    expected = bundle.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} tensors of the wrong shape (e.g. {k}: {tuple(state[k].shape)} "
                        f"instead of {tuple(expected[k].shape)})")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not match its model: {'; '.join(problems)}")


def _without_retired_keys(stored: Any) -> Any:
    """A stored config (a nested dict) without the keys of RETIRED_CONFIG_KEYS."""
    if not isinstance(stored, dict):
        return stored
    out = copy.deepcopy(stored)
    for *parents, last in RETIRED_CONFIG_KEYS:
        node = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def load_bundle(path: str | Path | None = None, map_location: str | torch.device = "cpu",
                config: ModelBundleConfig | None = None) -> ModelBundle:
    """Load a bundle (default: the shipped weights). With ``config``, the checkpoint must have been trained
    with exactly that configuration. Raises CheckpointError (one line) for a missing, corrupt or mismatched
    file."""
    path = Path(path) if path is not None else default_bundle_path()
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path} (train one with `socialmirror train all` or pass "
                              f"--checkpoint)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {path} is not a readable torch file (corrupt or truncated?): "
                              f"{_first_line(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != BUNDLE_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a SocialMirror model bundle")
    if payload.get("version") != BUNDLE_VERSION:
        raise CheckpointError(f"checkpoint {path} has bundle version {payload.get('version')!r}; this code reads "
                              f"version {BUNDLE_VERSION}")
    try:
        stored = update(ModelBundleConfig(), _without_retired_keys(payload["config"])).resolved()
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has an incompatible config: {_first_line(exc)}") from None
    state = payload.get("state_dict")
    # The optional slot: there when the file holds its tensors (older files have neither the flag nor them).
    has_linear = isinstance(state, dict) and any(isinstance(k, str) and k.startswith("geometry_linear.")
                                                 for k in state)
    stored = dataclasses.replace(stored, geometry_linear=has_linear)
    if config is not None:
        # Whether the optional slot is there is not a mismatch of the trained networks (the trainer adds it).
        wanted = dataclasses.replace(config.resolved(), geometry_linear=has_linear)
        diffs = _config_differences(to_dict(wanted), to_dict(stored))
        if diffs:
            more = f" (+{len(diffs) - 1} more)" if len(diffs) > 1 else ""
            raise CheckpointError(f"checkpoint {path} was trained with another config: {diffs[0]}{more}")
    bundle = ModelBundle(stored)
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds no state_dict")
    _check_state(bundle, state, path)
    bundle.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    bundle.metadata = dict(payload.get("metadata") or {})
    return bundle.to(map_location).eval()


__all__ = ["BUNDLE_VERSION", "CheckpointError", "DiffusionConfig", "ModelBundle", "ModelBundleConfig",
           "default_bundle_path", "join_initial_estimators", "load_bundle", "save_bundle"]
