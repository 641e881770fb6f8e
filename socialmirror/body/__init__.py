"""Body models behind one interface (``BodyModel``), built from a spec string, and what is defined on the body.

``build_body_model("anny")`` (default, ships with the project) or ``build_body_model("smpl:DIR")`` /
``"smplx:DIR"`` with the user's licensed model files.

- ``skeleton``: the SMPL-24 names, tree and graph every part of the project speaks;
- ``kinematics``: forward kinematics over that tree; ``motion``: the motion representation x (rotations,
  shape, crop camera);
- ``keypoints``: image keypoint formats (MediaPipe-33, COCO-17) mapped onto the skeleton, and person boxes;
- ``ik``: fitting a body model to 3D joints (inverse kinematics);
- ``base`` / ``anny_model`` / ``smpl_model``: the interface and its backends.
"""
from __future__ import annotations

from socialmirror.body.base import BodyModel, BodyModelError, BodyOutput
from socialmirror.body.skeleton import CONTACT_JOINTS, JOINT_INDEX, NUM_JOINTS, SMPL24_NAMES, SMPL24_PARENTS

__all__ = ["BodyModel", "BodyModelError", "BodyOutput", "build_body_model", "CONTACT_JOINTS", "JOINT_INDEX",
           "NUM_JOINTS", "SMPL24_NAMES", "SMPL24_PARENTS"]


def build_body_model(spec: str = "anny", device: str = "cpu") -> BodyModel:
    """``anny`` | ``smpl:DIR`` | ``smplx:DIR`` (optionally ``smpl:DIR:female``) -> a BodyModel on ``device``."""
    kind, _, rest = spec.partition(":")
    if kind == "anny":
        from socialmirror.body.anny_model import AnnyBodyModel
        model = AnnyBodyModel()
    elif kind in ("smpl", "smplx"):
        if not rest:
            raise BodyModelError(f"--body {kind} needs the folder of the model files: {kind}:DIR")
        from socialmirror.body.smpl_model import SMPLBodyModel
        root, _, gender = rest.rpartition(":") if rest.endswith((":male", ":female", ":neutral")) else (rest, "", "")
        model = SMPLBodyModel(root, kind=kind, gender=gender or "neutral")
    else:
        raise BodyModelError(f"unknown body model {spec!r}: use anny, smpl:DIR or smplx:DIR")
    return model.to(device)
