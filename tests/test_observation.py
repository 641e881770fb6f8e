"""Observation model: camera placement, exact projection, determinism, occlusion from geometry, drop-out rates."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from socialmirror.body.keypoints import NUM_KEYPOINTS, keypoints_to_boxes, smpl24_mapped_mask, to_smpl24
from socialmirror.body.skeleton import JOINT_INDEX, SMPL24_NAMES
from socialmirror.data.formats.interchange import TwoPersonSequence
from socialmirror.data.observation import (CameraSampler, CameraSpec, ObservationConfig, ObservationModel,
                                           capsule_occlusion, mesh_occlusion, occlusion_rate,
                                           place_camera, to_smpl24_layout)

from _pair_helpers import STANDING

TORSO = ("pelvis", "left_hip", "right_hip", "neck", "left_shoulder", "right_shoulder")


def pair_sequence(offset_a, offset_b, frames: int = 4, names=SMPL24_NAMES, sway: float = 0.0) -> TwoPersonSequence:
    idx = [JOINT_INDEX[n] for n in names]
    t = np.arange(frames)[:, None, None]
    a = STANDING[idx][None] + np.asarray(offset_a) + sway * np.sin(t * 0.3) * np.array([1.0, 0.0, 0.0])
    b = STANDING[idx][None] + np.asarray(offset_b)
    b = np.broadcast_to(b, a.shape)
    return TwoPersonSequence(joints3d=np.stack([a, b], axis=1), joint_names=tuple(names), fps=30.0,
                             up=np.array([0.0, 1.0, 0.0]), name="pair")


def test_camera_looks_at_the_pair_with_opencv_axes():
    seq = pair_sequence([-0.5, 0, 0], [0.5, 0, 0])
    joints, _ = to_smpl24_layout(seq)
    cam = place_camera(joints, seq.up, CameraSpec(height=1.5, distance=4.0, fit=False))
    assert np.allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9)
    assert np.isclose(np.linalg.det(cam.R), 1.0)
    assert np.isclose(cam.centre[1], 1.5, atol=0.05)              # 1.5 m above the floor (feet at ~0)
    pc = cam.to_camera(joints)
    uv = cam.project(pc)
    head, pelvis = uv[0, 0, JOINT_INDEX["head"]], uv[0, 0, JOINT_INDEX["pelvis"]]
    assert head[1] < pelvis[1]                                   # y down: the head is higher in the image
    assert uv[0, 0, JOINT_INDEX["pelvis"], 0] < uv[0, 1, JOINT_INDEX["pelvis"], 0]  # person 0 on the left
    assert np.isclose(cam.K[0, 0], np.hypot(1280, 720))           # focal from the diagonal


def test_up_vector_is_respected():
    seq = pair_sequence([-0.5, 0, 0], [0.5, 0, 0])
    # The same scene in a z-up world: (x, y, z) -> (x, -z, y).
    rot = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    zup = TwoPersonSequence(joints3d=seq.joints3d @ rot.T, joint_names=seq.joint_names, fps=30.0,
                            up=np.array([0.0, 0.0, 1.0]))
    a = ObservationModel(ObservationConfig.clean()).observe(seq, CameraSpec(azimuth=30.0))
    b = ObservationModel(ObservationConfig.clean()).observe(zup, CameraSpec(azimuth=30.0))
    assert np.allclose(a.keypoints2d, b.keypoints2d, atol=1e-3)


def test_fit_backs_off_until_everyone_is_in_the_image():
    seq = pair_sequence([-1.5, 0, 0], [1.5, 0, 0])
    obs = ObservationModel(ObservationConfig.clean()).observe(seq, CameraSpec(distance=1.0, image_size=(720, 1280)))
    assert obs.camera.spec.distance > 1.0
    assert obs.in_image[..., obs.joint_mask].all()


def test_noise_free_observation_reprojects_camera_joints_exactly():
    seq = pair_sequence([-0.4, 0, 0.1], [0.4, 0, -0.1], frames=6, sway=0.2)
    obs = ObservationModel(ObservationConfig.clean()).observe(seq, CameraSpec(azimuth=20.0, height=1.2))
    k = obs.intrinsics.astype(np.float64)
    p = obs.joints_cam.astype(np.float64)
    uv = np.stack([k[0, 0] * p[..., 0] / p[..., 2] + k[0, 2], k[1, 1] * p[..., 1] / p[..., 2] + k[1, 2]], -1)
    given = obs.keypoints2d[..., 2] > 0
    assert np.array_equal(given, np.broadcast_to(smpl24_mapped_mask(), given.shape))
    assert np.allclose(obs.keypoints2d[..., :2][given], uv[given], atol=1e-3)
    # The camera-frame joints are the world joints through the extrinsics.
    e = obs.extrinsics.astype(np.float64)
    assert np.allclose(seq.joints3d @ e[:3, :3].T + e[:3, 3], p, atol=1e-4)
    assert obs.keypoints2d.shape == (6, 2, 24, 3) and obs.boxes.shape == (6, 2, 3)
    assert obs.detected.all()


def test_output_layout_matches_the_detector():
    """Only the joints MediaPipe's mapping fills can ever be non-zero, whatever the noise."""
    seq = pair_sequence([-0.4, 0, 0], [0.4, 0, 0], frames=30)
    obs = ObservationModel().observe(seq, seed=3)
    never = ~smpl24_mapped_mask()
    assert set(np.array(SMPL24_NAMES)[never]) == {"spine1", "spine2", "spine3", "left_collar", "right_collar"}
    assert (obs.keypoints2d[..., never, :] == 0).all()
    assert np.isfinite(obs.keypoints2d).all() and np.isfinite(obs.boxes).all()
    assert ((obs.keypoints2d[..., 2] >= 0) & (obs.keypoints2d[..., 2] <= 1)).all()


def test_simulated_detections_have_the_run_time_joints_and_boxes():
    """The simulator gives the joints a real detection gives (a full MediaPipe detection mapped by to_smpl24)
    and draws its boxes by the rule the run time applies to real detections."""
    seq = pair_sequence([-0.4, 0, 0], [0.4, 0, 0], frames=12)
    obs = ObservationModel(ObservationConfig.clean()).observe(seq, CameraSpec(azimuth=15.0))
    detection = np.concatenate([np.random.default_rng(1).uniform(100, 500, (NUM_KEYPOINTS, 2)),
                                np.full((NUM_KEYPOINTS, 1), 0.9)], axis=1)
    detector_gives = to_smpl24(detection)[:, 2] > 0
    assert np.array_equal((obs.keypoints2d[..., 2] > 0).any(axis=(0, 1)), detector_gives)
    keypoints, boxes, detected = keypoints_to_boxes(obs.keypoints2d)
    assert np.array_equal(detected, obs.detected)
    assert np.allclose(boxes, obs.boxes, atol=1e-3) and np.allclose(keypoints, obs.keypoints2d)


def test_same_seed_same_observation_and_other_seed_differs():
    seq = pair_sequence([-0.4, 0, 0], [0.4, 0, 0], frames=20)
    model = ObservationModel()
    a, b, c = model.observe(seq, seed=7), model.observe(seq, seed=7), model.observe(seq, seed=8)
    assert np.array_equal(a.keypoints2d, b.keypoints2d) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.keypoints2d, c.keypoints2d)
    sampler = CameraSampler()
    assert sampler.sample(np.random.default_rng(1)) == sampler.sample(np.random.default_rng(1))


def test_rear_person_is_occluded_front_person_is_not():
    # Camera on the pair's axis (azimuth 90: it looks along the line from person 0 to person 1),
    # person 1 stands 1 m directly behind person 0.
    seq = pair_sequence([0, 0, 0], [0, 0, 1.0])
    spec = CameraSpec(azimuth=90.0, height=1.2, distance=4.0, tilt=0.0)  # level camera: depth = distance
    obs = ObservationModel(ObservationConfig(noise=False)).observe(seq, spec)
    depth = obs.joints_cam[0, :, JOINT_INDEX["pelvis"], 2]
    front, rear = (0, 1) if depth[0] < depth[1] else (1, 0)
    assert depth[rear] - depth[front] == pytest.approx(1.0, abs=1e-3)
    torso = [JOINT_INDEX[n] for n in TORSO]
    assert obs.occluded[:, rear][:, torso].all()
    assert not obs.occluded[:, front].any()
    # With the noise model, the hidden joints get low confidence (or none) and the front person's do not.
    noisy = ObservationModel(ObservationConfig(missed_joint_prob=0, missed_frame_prob=0, swap_prob=0,
                                               outlier_prob=0)).observe(seq, spec, seed=0)
    conf = noisy.keypoints2d[..., 2]
    assert (conf[:, rear][:, torso] <= 0.3).all()
    assert (conf[:, front][:, torso] >= 0.7).all()
    # Side by side (azimuth 0) nobody is hidden.
    side = ObservationModel(ObservationConfig(noise=False)).observe(pair_sequence([-0.5, 0, 0], [0.5, 0, 0]),
                                                                   CameraSpec(azimuth=0.0))
    assert not side.occluded.any()
    assert occlusion_rate(obs) > occlusion_rate(side)


def test_mesh_occlusion_matches_capsules_on_a_body_like_point_cloud():
    # A crude "mesh": points sampled on the capsules' surfaces of the front person.
    seq = pair_sequence([0, 0, 0], [0, 0, 1.0])
    spec = CameraSpec(azimuth=90.0, height=1.2, distance=4.0)
    obs = ObservationModel(ObservationConfig(noise=False)).observe(seq, spec)
    front = int(np.argmin(obs.joints_cam[0, :, 0, 2]))
    rear = 1 - front
    rng = np.random.default_rng(0)
    p = obs.joints_cam[:, front]
    a, b = p[:, JOINT_INDEX["pelvis"]], p[:, JOINT_INDEX["neck"]]
    s = rng.random(4000)
    d = rng.normal(size=(4000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    cloud = a[:, None] + s[None, :, None] * (b - a)[:, None] + 0.15 * d[None]
    hit_mesh = mesh_occlusion(obs.joints_cam[:, rear].astype(np.float64), cloud)
    hit_caps = capsule_occlusion(obs.joints_cam[:, rear].astype(np.float64), obs.joints_cam[:, front].astype(float))
    assert hit_mesh[:, JOINT_INDEX["spine3"]].all() and hit_caps[:, JOINT_INDEX["spine3"]].all()
    assert not hit_mesh[:, JOINT_INDEX["left_foot"]].any()


def test_missed_frame_rate_is_roughly_as_configured():
    seq = pair_sequence([-0.5, 0, 0], [0.5, 0, 0], frames=3000)
    cfg = ObservationConfig(missed_frame_prob=0.1, missed_burst_mean=4.0, missed_joint_prob=0.0, occlusion=False)
    obs = ObservationModel(cfg).observe(seq, seed=0)
    rate = 1.0 - obs.detected.mean()
    assert 0.07 < rate < 0.13
    # Drop-outs come in bursts: the mean run length is near the configured one.
    runs = []
    for p in (0, 1):
        m = ~obs.detected[:, p]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], m.astype(int), [0]])))
        runs += list(edges[1::2] - edges[::2])
    assert 3.0 < np.mean(runs) < 5.0
    # Missed frames have no keypoints, and their boxes are filled from the neighbours.
    missed = ~obs.detected
    assert (obs.keypoints2d[missed] == 0).all()
    assert (obs.boxes[missed][:, 2] > 0).all()


def test_noise_scales_with_box_and_outliers_jump():
    seq = pair_sequence([-0.5, 0, 0], [0.5, 0, 0], frames=400)
    clean = ObservationModel(ObservationConfig.clean()).observe(seq)
    cfg = ObservationConfig(missed_joint_prob=0, missed_frame_prob=0, swap_prob=0, outlier_prob=0, bias_sigma=0,
                            occlusion=False, joint_noise={})
    noisy = ObservationModel(cfg).observe(seq, seed=1)
    err = noisy.keypoints2d[..., :2] - clean.keypoints2d[..., :2]
    given = clean.keypoints2d[..., 2] > 0
    side = clean.boxes[..., 2] / 1.2
    rel = (err / side[..., None, None])[given]
    assert 0.008 < rel.std() < 0.012
    out = ObservationModel(ObservationConfig(outlier_prob=0.2, occlusion=False, missed_joint_prob=0,
                                             missed_frame_prob=0, swap_prob=0)).observe(seq, seed=1)
    far = np.linalg.norm(out.keypoints2d[..., :2] - clean.keypoints2d[..., :2], axis=-1) / side[..., None]
    assert 0.1 < (far[given] > 0.08).mean() < 0.3


def test_left_right_swaps_happen():
    seq = pair_sequence([-0.5, 0, 0], [0.5, 0, 0], frames=300)
    cfg = ObservationConfig(swap_prob=0.5, jitter_sigma=0, bias_sigma=0, outlier_prob=0, missed_joint_prob=0,
                            missed_frame_prob=0, occlusion=False)
    obs = ObservationModel(cfg).observe(seq, seed=2)
    clean = ObservationModel(ObservationConfig.clean()).observe(seq)
    lw, rw = JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]
    swapped = np.isclose(obs.keypoints2d[:, :, lw, 0], clean.keypoints2d[:, :, rw, 0])
    assert 0.4 < swapped.mean() < 0.6


def test_joint_subsets_work():
    """Bütepage-like 8 joints: no legs, no pelvis; the rest of the layout stays at confidence 0."""
    names = ("spine3", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
             "right_wrist")
    seq = pair_sequence([-0.4, 0, 0], [0.4, 0, 0], frames=10, names=names)
    obs = ObservationModel().observe(seq, seed=0)
    assert obs.joint_mask.sum() == 8
    absent = ~obs.joint_mask
    assert (obs.keypoints2d[:, :, absent] == 0).all()
    assert np.isnan(obs.joints_cam[:, :, absent]).all()
    assert np.isfinite(obs.joints_cam[:, :, obs.joint_mask]).all()
    assert obs.detected.mean() > 0.8
    # The floor is estimated from the head: the camera stands about 1.5 m above it.
    assert abs(obs.camera.centre[1] - 1.5) < 0.2


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="missed_frame_prob"):
        ObservationConfig(missed_frame_prob=1.5)
    with pytest.raises(ValueError, match="not SMPL-24"):
        ObservationConfig(joint_noise={"nose": 2.0})


@pytest.mark.shared_data
def test_cmu_pair_observes(shared_data):
    from socialmirror.data.datasets.cmu import read_cmu_folder
    from socialmirror.data.formats.interchange import resample
    seq = resample(read_cmu_folder(shared_data / "cmu_18_19")[0], 30.0)
    obs = ObservationModel().observe(seq, seed=0)
    assert obs.keypoints2d.shape == (seq.num_frames, 2, 24, 3)
    assert obs.joint_mask.sum() == 21
    assert obs.detected.mean() > 0.85
    # Looking along the line between the two actors, one hides the other for part of the clip.
    along = ObservationModel(ObservationConfig(noise=False)).observe(seq, CameraSpec(azimuth=90.0))
    assert occlusion_rate(along) > 0.05


def test_mesh_occlusion_with_body_model_vertices():
    """Two anny bodies, one 1 m behind the other on the camera axis: the mesh path marks the rear torso."""
    import torch

    from socialmirror.body import BodyModelError, build_body_model
    try:
        body = build_body_model("anny")
    except BodyModelError as e:
        pytest.skip(str(e))
    rot = torch.eye(3).expand(2, 24, 3, 3).clone()
    out = body(rot, body.default_shape(2), torch.tensor([[0.0, 0.95, 0.0], [0.0, 0.95, 1.0]]))
    joints = out.joints.detach().numpy()[None].repeat(3, axis=0)
    verts = out.vertices.detach().numpy()[None].repeat(3, axis=0)
    seq = TwoPersonSequence(joints3d=joints, joint_names=SMPL24_NAMES, fps=30.0, up=np.array([0.0, 1.0, 0.0]),
                            vertices=verts, faces=np.asarray(body.faces))
    spec = CameraSpec(azimuth=90.0, height=1.2, distance=4.0)
    obs = ObservationModel(ObservationConfig(noise=False)).observe(seq, spec)
    front = int(np.argmin(obs.joints_cam[0, :, JOINT_INDEX["pelvis"], 2]))
    rear = 1 - front
    torso = [JOINT_INDEX[n] for n in ("pelvis", "spine2", "neck", "left_shoulder", "right_shoulder")]
    assert obs.occluded[:, rear][:, torso].all()
    assert not obs.occluded[:, front].any()
    capsules = ObservationModel(ObservationConfig(noise=False, use_mesh=False)).observe(seq, spec)
    assert capsules.occluded[:, rear][:, torso].all()
    agree = (capsules.occluded == obs.occluded).mean()
    assert agree > 0.85


def test_a_pair_observation_keeps_its_stated_statures_through_a_file(tmp_path):
    from socialmirror.data.observation import PairObservation
    T = 3
    obs = PairObservation(np.zeros((T, 2, 24, 3), np.float32), np.zeros((T, 2, 3), np.float32), np.eye(3),
                          (640, 480), 30.0, np.array([4, 7]), statures=np.array([1.8, np.nan]))
    loaded = PairObservation.load(obs.save(tmp_path / "pair.npz"))
    np.testing.assert_array_equal(loaded.statures, [1.8, np.nan])
    assert PairObservation.load(replace(obs, statures=None).save(tmp_path / "none.npz")).statures is None
