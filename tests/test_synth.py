"""The interaction synthesizer: valid files, exact contacts, no interpenetration, planted feet,
Table-1 sentences, reproducibility, the CLI entry."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from socialmirror.body.skeleton import CONTACT_JOINTS, JOINT_INDEX, SMPL24_NAMES
from socialmirror.data.formats.interchange import read_npz, validate_npz, write_npz
from socialmirror.data.synth import INTERACTIONS, InteractionSynthesizer, SynthConfig
from socialmirror.data.synth.skinning import Skinner, global_transforms, penetration_depth, vertex_normals
from socialmirror.data.synth.stage import other
from socialmirror.data.synth.synthesizer import HEIGHT
from socialmirror.errors import UserError

NO_CONTACT_TYPES = ("wave", "point_at", "kick_dodge", "walk_together", "walk_past", "talk", "sit_and_stand",
                    "hook_duck")
CONTACT_TYPES = [t for t in INTERACTIONS if t not in NO_CONTACT_TYPES]
WALKING_TYPES = ("walk_together", "walk_past", "lead_by_hand")
# a kick lifts a foot, a shove knocks the other back a step
STANDING_TYPES = [t for t in INTERACTIONS if t not in WALKING_TYPES and t not in ("kick_dodge", "shove")]


@pytest.fixture(scope="module")
def synth(anny_body):
    return InteractionSynthesizer(anny_body, SynthConfig(with_vertices=True))


@pytest.fixture(scope="module")
def samples(synth):
    """One sample per type (seeded), with vertices."""
    return {t: synth.sample(np.random.default_rng([7, i]), action=t, name=t) for i, t in enumerate(INTERACTIONS)}


def test_skinning_matches_body_model(anny_body):
    sk = Skinner(anny_body)
    shape = np.array([0.2, 0.3, 0.7, 0.4, 0.6, 0.5])
    rest = sk.rest(shape)
    g = torch.Generator().manual_seed(0)
    rv = torch.randn(3, 24, 3, generator=g, dtype=torch.float64) * 0.4
    from socialmirror.geometry.rotations import axis_angle_to_matrix
    R = axis_angle_to_matrix(rv)
    transl = torch.randn(3, 3, generator=g, dtype=torch.float64)
    ref = anny_body(R.float(), torch.tensor(shape, dtype=torch.float32).expand(3, 6), transl.float())
    joints, glob = global_transforms(rest, R.numpy(), transl.numpy())
    verts = sk.pose(rest, glob, joints)
    assert np.abs(verts - ref.vertices.numpy()).max() < 1e-4
    assert np.abs(joints - ref.joints.numpy()).max() < 1e-4


@pytest.mark.parametrize("action", list(INTERACTIONS))
def test_every_type_writes_a_valid_file(samples, action, tmp_path):
    seq = samples[action]
    path = write_npz(seq, tmp_path / f"{action}.npz", compress=False)
    validate_npz(path)
    back = read_npz(path)
    assert back.action == action
    assert back.joints3d.shape[1:] == (2, 24, 3) and back.joint_names == SMPL24_NAMES
    assert np.allclose(back.up, [0, 1, 0]) and back.fps == 30.0
    assert 2.0 <= back.duration <= 4.05
    for j1, j2, t0, t1 in back.contacts:
        assert j1 in CONTACT_JOINTS and j2 in CONTACT_JOINTS and 0 <= t0 <= t1 < back.num_frames
    if action in CONTACT_TYPES:
        assert back.contacts, f"{action} has no contact"
    assert back.vertices is not None and back.faces is not None


def _regions(synth, seq, person, joint):
    shape = np.array(seq.meta["shapes"][person])
    return synth.skinner.rest(shape).regions[joint]


@pytest.mark.parametrize("action", CONTACT_TYPES)
def test_contacts_touch_exactly_on_annotated_frames(synth, samples, action):
    """Annotated frames: closest vertex distance of the two joints' surfaces < 1.5 cm and joint centres
    < 15 cm; every other frame of an annotated pair: surfaces apart."""
    seq = samples[action]
    pairs = {(j1, j2) for j1, j2, _, _ in seq.contacts}
    for j1, j2 in pairs:
        ra, rb = _regions(synth, seq, 0, j1), _regions(synth, seq, 1, j2)
        on = np.zeros(seq.num_frames, dtype=bool)
        for a, b, t0, t1 in seq.contacts:
            if (a, b) == (j1, j2):
                on[t0:t1 + 1] = True
        for t in range(seq.num_frames):
            d = cKDTree(seq.vertices[t, 1, rb]).query(seq.vertices[t, 0, ra])[0].min()
            jd = np.linalg.norm(seq.joints3d[t, 0, JOINT_INDEX[j1]] - seq.joints3d[t, 1, JOINT_INDEX[j2]])
            if on[t]:
                assert d < 0.015 and jd < 0.15, (action, j1, j2, t, d, jd)
            else:
                assert d >= 0.015 - 1e-4, (action, j1, j2, t, d)


@pytest.mark.parametrize("action", ["handshake", "dance", "push"])
def test_no_interpenetration(synth, samples, action):
    """Deepest penetration on the closest frames stays under 1 cm (exact signed-distance check on the
    closest frame, the fast vertex test on several)."""
    from socialmirror.metrics import penetration_depths
    seq = samples[action]
    faces = seq.faces
    gap = np.linalg.norm(seq.joints3d[:, 0, :, None] - seq.joints3d[:, 1, None], axis=-1).min((1, 2))
    frames = np.argsort(gap)[:6]
    for t in frames:
        va, vb = seq.vertices[t, 0].astype(np.float64), seq.vertices[t, 1].astype(np.float64)
        assert penetration_depth(va, vertex_normals(va, faces), vb, vertex_normals(vb, faces)) <= 0.01
    t = frames[0]
    va, vb = seq.vertices[t, 0].astype(np.float64), seq.vertices[t, 1].astype(np.float64)
    assert max(penetration_depths(va, faces, vb, 64).max(), penetration_depths(vb, faces, va, 64).max()) <= 0.01


@pytest.mark.parametrize("action", STANDING_TYPES)
def test_feet_planted_when_standing(samples, action):
    seq = samples[action]
    for name in ("left_ankle", "right_ankle"):
        xz = seq.joint(name)[:, :, [0, 2]]  # (T, 2, 2)
        assert np.linalg.norm(xz - xz[:1], axis=-1).max() < 0.01, (action, name)
    # feet on the floor: the lowest vertex of each person is at y ~ 0
    low = seq.vertices[..., 1].min(axis=2)
    assert np.abs(low).max() < 0.03


def test_motion_is_smooth_and_alive(samples):
    seq = samples["handshake"]
    acc = np.diff(seq.joints3d, n=2, axis=0) * seq.fps ** 2
    assert np.linalg.norm(acc, axis=-1).max() < 60.0  # no jumps
    still = np.linalg.norm(seq.joints3d[1:, :, JOINT_INDEX["spine3"]] - seq.joints3d[:-1, :, JOINT_INDEX["spine3"]],
                           axis=-1)
    assert (still > 1e-5).mean() > 0.5  # sway and breathing: never frozen


def test_sentences_follow_table_1(anny_body, samples):
    s = InteractionSynthesizer(anny_body, SynthConfig(types=("wave", "point_at", "walk_together")))
    seqs = [s.sample(np.random.default_rng(seed)) for seed in range(8)] + list(samples.values())
    texts = set()
    for seq in seqs:
        assert seq.text is not None and len(seq.text) == 2
        for sentence in seq.text:
            assert sentence.startswith("a person")
            low = sentence.lower()
            assert "person 1" not in low and "person 2" not in low
            texts.add(sentence)
    assert len(texts) >= 12
    # the acting hand of person 1 is named and agrees with the contact
    hs = samples["handshake"]
    hand = hs.contacts[0][0].split("_")[0]
    assert hs.meta["side"] == hand and f"{hand} hand" in hs.text[0]


def test_same_seed_same_sample(anny_body):
    s = InteractionSynthesizer(anny_body, SynthConfig(types=("high_five", "wave")))
    a = s.sample(np.random.default_rng(3))
    b = s.sample(np.random.default_rng(3))
    c = s.sample(np.random.default_rng(4))
    assert np.array_equal(a.joints3d, b.joints3d) and a.text == b.text and a.contacts == b.contacts
    assert a.action != c.action or not np.array_equal(a.joints3d[:1], c.joints3d[:1])


def test_children_and_adults_differ_in_size(anny_body):
    s = InteractionSynthesizer(anny_body, SynthConfig())
    rng = np.random.default_rng(0)
    kid, adult = s.draw_person(rng, True), s.draw_person(rng, False)
    assert kid.rest.height < 1.4 < adult.rest.height


def test_adults_statures_follow_the_population(anny_body):
    """Adults are drawn at real people's statures: women's and men's means, one spread, cut at 2.5 spreads;
    the height phenotype that gives a stature is found to a millimetre."""
    s = InteractionSynthesizer(anny_body, SynthConfig(adult_stature=(1.60, 1.80, 0.05)))
    rng = np.random.default_rng(0)
    people = [s.draw_person(rng, False) for _ in range(40)]
    heights = np.array([p.rest.height for p in people])
    expected = np.array([1.60 + 0.20 * p.shape[0] for p in people])  # gender 0 woman, 1 man
    residual = heights - expected
    assert abs(residual.mean()) < 0.025 and 0.03 < residual.std() < 0.07
    assert np.abs(residual).max() <= 2.5 * 0.05 + 1e-3
    for target in (1.45, 1.95):
        shape = people[0].shape.copy()
        shape[HEIGHT] = s.height_phenotype(shape, target)
        assert abs(s.skinner.rest(shape).height - target) < 1e-3


def test_synth_main_writes_valid_folder(tmp_path):
    from socialmirror.data.synth.cli import synth_main
    assert synth_main(3, tmp_path, seed=1, types=["wave", "high_five"], progress=False) == 0
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 3
    for f in files:
        validate_npz(f)
        assert read_npz(f).text is not None
    with pytest.raises(UserError, match="unknown interaction types"):
        synth_main(1, tmp_path, types=["nope"], progress=False)
    with pytest.raises(UserError, match="-n must be at least 1"):
        synth_main(0, tmp_path, progress=False)
    with pytest.raises(UserError, match="--adult-stature takes"):
        synth_main(1, tmp_path, adult_stature=(1.63, 1.77, 3.0), progress=False)


def test_a_kind_that_never_draws_ends_with_a_one_line_user_error(synth, monkeypatch, tmp_path, capsys):
    """A kind asked for alone whose every try fails (here a script that always redraws) ends the command with
    one line naming the kind and the last reason, exit status 2 (a user error: another seed or more kinds), not
    an internal error."""
    from socialmirror import cli
    from socialmirror.data.synth import synthesizer
    from socialmirror.data.synth.stage import Retry

    def never(st):
        raise Retry("the hands never meet")
    monkeypatch.setitem(synthesizer.INTERACTIONS, "wave", never)
    with pytest.raises(synthesizer.DrawError, match=r"could not draw a valid wave in 36 tries \(the last: wave: the "
                                                      r"hands never meet\)"):
        synth.sample(np.random.default_rng(0), action="wave")
    assert cli.main(["synth", "-n", "1", "-o", str(tmp_path / "out"), "--types", "wave"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "could not draw a valid wave" in err[-1] and "internal error" not in err[-1]


@pytest.mark.slow
def test_synthesis_resumes_and_two_processes_write_the_same_files(tmp_path):
    """Sample i depends on (seed, i) only: a folder made by two processes, after an interruption that left
    one file, holds the very files one process writes; the file already there is kept, not rewritten."""
    from socialmirror.data.synth.cli import synth_main
    synth_main(3, tmp_path / "one", seed=2, types=["wave"], progress=False)
    (tmp_path / "two").mkdir()
    kept = tmp_path / "two" / "synth_00001.npz"
    kept.write_bytes((tmp_path / "one" / "synth_00001.npz").read_bytes())
    stamp = kept.stat().st_mtime_ns
    synth_main(3, tmp_path / "two", seed=2, types=["wave"], progress=False, jobs=2)
    assert kept.stat().st_mtime_ns == stamp
    for name in ("synth_00000.npz", "synth_00001.npz", "synth_00002.npz"):
        a, b = read_npz(tmp_path / "one" / name), read_npz(tmp_path / "two" / name)
        assert np.array_equal(a.joints3d, b.joints3d) and a.text == b.text


def test_joint_limits_and_body_params(anny_body, samples):
    """Every rotation stays within the IK module's joint limits (fists curl the fingers up to 1.4 rad)
    and the stored body-model parameters reproduce joints3d exactly."""
    from socialmirror.body.ik import MAX_JOINT_ANGLE
    for action, seq in samples.items():
        params = seq.meta["body_params"]
        R = np.asarray(params["rotmats"])  # (T, 2, 24, 3, 3)
        angle = np.arccos(np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1, 1)).max(axis=(0, 1))
        for j, name in enumerate(SMPL24_NAMES[1:], start=1):
            limit = 1.45 if name.endswith("_hand") else MAX_JOINT_ANGLE.get(name, 2.6)
            assert angle[j] <= limit + 1e-6, (action, name, angle[j])
        joints = anny_body.joints(torch.tensor(R, dtype=torch.float32),
                                  torch.tensor(params["shape"], dtype=torch.float32),
                                  torch.tensor(params["transl"], dtype=torch.float32))
        assert np.abs(joints.numpy() - seq.joints3d).max() < 1e-3, action


@pytest.mark.parametrize("action", WALKING_TYPES)
def test_walkers_do_not_slide(samples, action):
    """Walking: a foot on the floor (its stance) does not move horizontally."""
    seq = samples[action]
    for p in range(2):
        for name in ("left_ankle", "right_ankle"):
            a = seq.joint(name)[:, p]
            stance = a[:, 1] < a[:, 1].min() + 0.002
            both = stance[1:] & stance[:-1]
            step = np.linalg.norm(np.diff(a[:, [0, 2]], axis=0), axis=-1)
            assert both.sum() > 5 and step[both].max() < 0.002, (p, name)


def _stand_in(anny_body, posture):
    """Person 1 of a fresh stage standing in ``posture``: world joints (T, 24, 3)."""
    from socialmirror.data.synth.motion import pose_person
    from socialmirror.data.synth.stage import Stage
    s = InteractionSynthesizer(anny_body, SynthConfig())
    rng = np.random.default_rng(3)
    stage = Stage(rng, 30, 30.0, [s.draw_person(rng, False) for _ in range(2)])
    stage.postures = [posture, posture]
    return pose_person(stage.stand(0, np.zeros(3), 0.0))[1]


def _flex(joints, a, m, b):
    u = joints[:, JOINT_INDEX[m]] - joints[:, JOINT_INDEX[a]]
    v = joints[:, JOINT_INDEX[b]] - joints[:, JOINT_INDEX[m]]
    cos = (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_postures_lean_twist_crouch_and_straighten_arms(anny_body):
    """A standing person holds the drawn posture: the torso leans and twists by the drawn angles, a crouch
    bends the knees with the feet where they were, a hanging wrist at 0.999 of the arm leaves the elbow nearly
    straight; spread 0 is the upright rest posture."""
    from socialmirror.data.synth.stage import Posture, Stage
    upright = _stand_in(anny_body, Posture())
    posed = _stand_in(anny_body, Posture(lean=0.3, twist=0.25, crouch=0.12, idle_reach=(0.999, 0.999)))
    up = np.array([0.0, 1.0, 0.0])

    def lean(j):
        spine = j[:, JOINT_INDEX["neck"]] - j[:, JOINT_INDEX["pelvis"]]
        return np.degrees(np.arccos(spine @ up / np.linalg.norm(spine, axis=-1))).mean()

    def twist(j):
        s = j[:, JOINT_INDEX["left_shoulder"]] - j[:, JOINT_INDEX["right_shoulder"]]
        h = j[:, JOINT_INDEX["left_hip"]] - j[:, JOINT_INDEX["right_hip"]]
        return np.degrees(np.arctan2(s[:, 2], s[:, 0]) - np.arctan2(h[:, 2], h[:, 0])).mean()

    assert lean(upright) < 6 and abs(twist(upright)) < 3
    assert lean(posed) > lean(upright) + 12 and abs(twist(posed)) > 9
    knee = ("left_hip", "left_knee", "left_ankle")
    assert _flex(posed, *knee).mean() > _flex(upright, *knee).mean() + 20
    for name in ("left_ankle", "right_ankle"):
        assert np.abs(posed[:, JOINT_INDEX[name], [0, 2]] - upright[:, JOINT_INDEX[name], [0, 2]]).max() < 0.02
    assert _flex(upright, "left_shoulder", "left_elbow", "left_wrist").mean() > 35
    assert _flex(posed, "left_shoulder", "left_elbow", "left_wrist").mean() < 15
    upright_stage = Stage(np.random.default_rng(0), 10, 30.0, [None, None], posture_spread=0.0)
    assert upright_stage.postures == [Posture(), Posture()]


def test_walking_past_closes_and_opens_the_distance(samples):
    """Two people walking past each other: apart at the ends, beside each other (under 1.3 m, never touching)
    in between, heading opposite ways."""
    seq = samples["walk_past"]
    pelvis = seq.joint("pelvis")[:, :, [0, 2]]
    gap = np.linalg.norm(pelvis[:, 0] - pelvis[:, 1], axis=-1)
    closest = int(gap.argmin())
    assert 0 < closest < seq.num_frames - 1 and 0.35 < gap.min() < 1.3
    assert gap[0] > gap.min() + 0.5 and gap[-1] > gap.min() + 0.5
    heading = pelvis[-1] - pelvis[0]
    assert heading[0] @ heading[1] < 0
    assert not seq.contacts


def test_talking_people_stand_apart_and_the_speaker_gestures(samples):
    """Talking: one to two metres apart (pelvis to pelvis) throughout, no contact, and each person, in their
    turn, bends an elbow past 80 degrees to gesture (a hanging arm stays under about 56, the most a posture
    draws)."""
    seq = samples["talk"]
    pelvis = seq.joint("pelvis")[:, :, [0, 2]]
    gap = np.linalg.norm(pelvis[:, 0] - pelvis[:, 1], axis=-1)
    assert 0.9 < gap.min() and gap.max() < 2.6 and not seq.contacts
    for p in range(2):
        flexion = max(_flex(seq.joints3d[:, p], f"{s}_shoulder", f"{s}_elbow", f"{s}_wrist").max()
                      for s in ("left", "right"))
        assert flexion > 80, p


def test_a_pat_on_the_shoulder_comes_down_on_it_more_than_once(samples):
    """A pat on the shoulder: the acting hand touches the partner's shoulder on separate runs of frames (the
    pats), rising between them, and while it touches the wrist is above the shoulder joint (the palm on its
    top), not beside or below it."""
    seq = samples["pat_shoulder"]
    runs = [(t0, t1) for ja, jb, t0, t1 in seq.contacts if ja.endswith("_wrist") and jb.endswith("_shoulder")]
    assert len(runs) >= 2
    (hand, shoulder), = {(ja, jb) for ja, jb, _, _ in seq.contacts}
    wrist, joint = seq.joint(hand)[:, 0], seq.joint(shoulder)[:, 1]
    touching = np.zeros(seq.num_frames, dtype=bool)
    for t0, t1 in runs:
        touching[t0:t1 + 1] = True
    above = wrist[:, 1] - joint[:, 1]
    assert above[touching].min() > 0.03
    between = [above[a1 + 1:b0].max() - above[touching].mean() for (_, a1), (b0, _) in zip(runs, runs[1:])]
    assert min(between) > 0.015  # the hand lifts between pats


def test_a_front_kick_chambers_the_knee_and_stops_short(samples):
    """A kick that misses: the kicking knee bends past 80 degrees and the ankle rises above a third of the leg,
    the standing foot stays where it is, and nothing touches (no contact, the bodies 5 cm apart or more)."""
    seq = samples["kick_dodge"]
    kicker = seq.joints3d[:, 0]
    side = seq.meta["side"]
    stand = "left" if side == "right" else "right"
    knee = _flex(kicker, f"{side}_hip", f"{side}_knee", f"{side}_ankle")
    leg = np.linalg.norm(kicker[0, JOINT_INDEX[f"{side}_hip"]] - kicker[0, JOINT_INDEX[f"{side}_ankle"]])
    ankle = kicker[:, JOINT_INDEX[f"{side}_ankle"]]
    assert knee.max() > 80 and ankle[:, 1].max() - ankle[0, 1] > leg / 3
    planted = kicker[:, JOINT_INDEX[f"{stand}_ankle"]]
    assert np.abs(planted[:, [0, 2]] - planted[0, [0, 2]]).max() < 0.002
    assert not seq.contacts and seq.meta["max_penetration_m"] == 0.0
    gap = min(cKDTree(seq.vertices[t, 1]).query(seq.vertices[t, 0], k=1)[0].min() for t in range(0, seq.num_frames, 4))
    assert gap > 0.05  # the foot stops short of the other's body


def _forward(joints: np.ndarray) -> np.ndarray:
    """(T, 24, 3) -> (T, 3) the horizontal way a person faces (their left is left_hip - right_hip, y up)."""
    left = joints[:, JOINT_INDEX["left_hip"]] - joints[:, JOINT_INDEX["right_hip"]]
    f = np.cross(left, [0.0, 1.0, 0.0])
    f[:, 1] = 0.0
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def test_an_arm_round_the_shoulders_rests_on_the_far_shoulder_from_behind(samples):
    """An arm round the shoulders: the two face one way, the partner on the acting arm's side; while the hand
    touches, it rests on the top of the partner's far shoulder (the wrist above the joint) and the elbow is
    behind the partner's back (the arm goes round, not through or in front)."""
    seq = samples["arm_around"]
    side = seq.meta["side"]
    (hand, shoulder), = {(ja, jb) for ja, jb, _, _ in seq.contacts}
    assert (hand, shoulder) == (f"{side}_wrist", f"{side}_shoulder")
    one, two = seq.joints3d[:, 0], seq.joints3d[:, 1]
    f1, f2 = _forward(one), _forward(two)
    assert (f1 * f2).sum(-1).min() > 0.8
    towards = two[:, 0] - one[:, 0]
    own_side = one[:, JOINT_INDEX[f"{side}_hip"]] - one[:, JOINT_INDEX[f"{other(side)}_hip"]]
    assert ((towards * own_side).sum(-1) > 0).all()
    touching = np.zeros(seq.num_frames, dtype=bool)
    for _, _, t0, t1 in seq.contacts:
        touching[t0:t1 + 1] = True
    above = one[touching, JOINT_INDEX[hand], 1] - two[touching, JOINT_INDEX[shoulder], 1]
    assert above.min() > 0.03
    elbow = one[touching, JOINT_INDEX[f"{side}_elbow"]] - two[touching, JOINT_INDEX["spine3"]]
    assert ((elbow * f2[touching]).sum(-1) < -0.05).all()


def test_one_leads_the_other_by_the_hand_walking_ahead(samples):
    """Led by the hand: both walk one way at one speed, the leader ahead and the follower on the side of the
    leader's leading hand; the leader's hand reaches back (the wrist behind the leader's shoulder) and the
    follower's forward (ahead of the follower's shoulder), and they hold hands in every frame after the first
    half second."""
    seq = samples["lead_by_hand"]
    side, side_b = seq.meta["side"], other(seq.meta["side"])
    (hand, held), = {(ja, jb) for ja, jb, _, _ in seq.contacts}
    assert (hand, held) == (f"{side}_wrist", f"{side_b}_wrist")
    leader, follower = seq.joints3d[:, 0], seq.joints3d[:, 1]
    f1, f2 = _forward(leader), _forward(follower)
    assert (f1 * f2).sum(-1).min() > 0.8
    pelvis = JOINT_INDEX["pelvis"]
    travel = leader[-1, pelvis] - leader[0, pelvis]
    assert (travel * f1[0]).sum() > 0.5 and abs((travel - (follower[-1, pelvis] - follower[0, pelvis]))).max() < 0.05
    assert (((leader[:, pelvis] - follower[:, pelvis]) * f1).sum(-1) > 0.2).all()  # ahead
    own_side = leader[:, JOINT_INDEX[f"{side}_hip"]] - leader[:, JOINT_INDEX[f"{side_b}_hip"]]
    assert (((follower[:, pelvis] - leader[:, pelvis]) * own_side).sum(-1) > 0).all()  # on the hand's side
    touching = np.zeros(seq.num_frames, dtype=bool)
    for _, _, t0, t1 in seq.contacts:
        touching[t0:t1 + 1] = True
    assert touching[int(0.5 * seq.fps):].all()
    back = leader[touching, JOINT_INDEX[hand]] - leader[touching, JOINT_INDEX[f"{side}_shoulder"]]
    forward = follower[touching, JOINT_INDEX[held]] - follower[touching, JOINT_INDEX[f"{side_b}_shoulder"]]
    assert ((back * f1[touching]).sum(-1) < -0.05).all() and ((forward * f2[touching]).sum(-1) > 0.05).all()


def test_seated_side_by_side_then_person_one_stands_up(samples):
    """Sitting: at the start both sit with level thighs (the hips at the knees' height) and bent knees (70-110
    degrees), side by side facing one way; by the end person 1 stands (knees nearly straight, the pelvis
    risen by a third of the leg or more) on the feet it sat with."""
    seq = samples["sit_and_stand"]
    for p in range(2):
        person = seq.joints3d[:, p]
        for side in ("left", "right"):
            hip, knee = person[0, JOINT_INDEX[f"{side}_hip"]], person[0, JOINT_INDEX[f"{side}_knee"]]
            thigh = np.linalg.norm(knee - hip)
            assert abs(knee[1] - hip[1]) < 0.2 * thigh
            assert 70 < _flex(person[:1], f"{side}_hip", f"{side}_knee", f"{side}_ankle")[0] < 110
    assert (_forward(seq.joints3d[:, 0]) * _forward(seq.joints3d[:, 1])).sum(-1)[0] > 0.8
    one = seq.joints3d[:, 0]
    leg = np.linalg.norm(one[0, JOINT_INDEX["left_hip"]] - one[0, JOINT_INDEX["left_knee"]]) + \
        np.linalg.norm(one[0, JOINT_INDEX["left_knee"]] - one[0, JOINT_INDEX["left_ankle"]])
    assert one[-1, JOINT_INDEX["pelvis"], 1] - one[0, JOINT_INDEX["pelvis"], 1] > leg / 3
    assert _flex(one[-1:], "left_hip", "left_knee", "left_ankle")[0] < 25


def test_a_hook_swings_over_the_ducked_head(samples):
    """A hook and a duck: where the fist passes nearest the defender's head (horizontally), it is above the
    head by 10 cm or more; the defender is ducked then (the pelvis down by a fifth of the leg or more, knees
    bent past 60 degrees) and stands up again by the end; nothing touches."""
    seq = samples["hook_duck"]
    side = seq.meta["side"]
    one, two = seq.joints3d[:, 0], seq.joints3d[:, 1]
    fist, head = one[:, JOINT_INDEX[f"{side}_wrist"]], two[:, JOINT_INDEX["head"]]
    t = int(np.argmin(np.linalg.norm((fist - head)[:, [0, 2]], axis=-1)))
    assert np.linalg.norm((fist - head)[t, [0, 2]]) < 0.25 and fist[t, 1] - head[t, 1] > 0.1
    leg = np.linalg.norm(two[0, JOINT_INDEX["left_hip"]] - two[0, JOINT_INDEX["left_knee"]]) + \
        np.linalg.norm(two[0, JOINT_INDEX["left_knee"]] - two[0, JOINT_INDEX["left_ankle"]])
    pelvis = two[:, JOINT_INDEX["pelvis"], 1]
    assert pelvis[0] - pelvis[t] > leg / 5 and pelvis[0] - pelvis[-1] < 0.05
    assert _flex(two[t:t + 1], "left_hip", "left_knee", "left_ankle")[0] > 60
    assert not seq.contacts


def test_a_shove_knocks_the_other_back_one_step_per_foot(samples):
    """A shove: the palms on the chest as in a push; then the pushed person ends 0.1 m or more farther from the
    pusher, each of their feet moving in one step (a single run of frames, at most a third of a second) and
    planted before and after it; the pusher's feet stay planted."""
    seq = samples["shove"]
    assert {(a, b) for a, b, _, _ in seq.contacts} <= {("left_wrist", "right_collar"), ("right_wrist", "left_collar")}
    pelvis = seq.joint("pelvis")  # (T, 2, 3)
    gap = np.linalg.norm((pelvis[:, 1] - pelvis[:, 0])[:, [0, 2]], axis=-1)
    assert gap[-1] - gap[0] > 0.1
    for name in ("left_ankle", "right_ankle"):
        step = np.linalg.norm(np.diff(seq.joint(name)[:, :, [0, 2]], axis=0), axis=-1)  # (T-1, 2)
        assert step[:, 0].max() < 0.002
        moving = np.flatnonzero(step[:, 1] > 0.002)
        assert len(moving) and moving[-1] - moving[0] + 1 == len(moving) <= seq.fps / 3


def test_a_hug_goes_over_the_shoulders_and_under_the_arms(samples):
    """A hug: face to face, person 1 the taller; while person 1's hands rest on person 2's shoulders they lie
    behind those shoulders and above them, with the elbows over them; person 2's hands are round person 1's back
    (behind person 1's spine) and person 2's elbows well under person 1's shoulders."""
    seq = samples["hug"]
    one, two = seq.joints3d[:, 0], seq.joints3d[:, 1]
    f1, f2 = _forward(one), _forward(two)
    assert (f1 * f2).sum(-1).max() < -0.9
    statures = [p[:, :, 1].max() - p[:, :, 1].min() for p in (one, two)]
    assert statures[0] > statures[1]
    touching = np.zeros(seq.num_frames, dtype=bool)
    for _, _, t0, t1 in seq.contacts:
        touching[t0:t1 + 1] = True
    assert touching.sum() > seq.num_frames / 3
    J = JOINT_INDEX
    for side in ("left", "right"):
        shoulder = two[touching, J[f"{other(side)}_shoulder"]]  # facing: a left hand on the right shoulder
        wrist = one[touching, J[f"{side}_wrist"]]
        assert ((wrist - shoulder) * -f2[touching]).sum(-1).min() > 0.03
        assert (wrist[:, 1] - shoulder[:, 1]).min() > 0.0
        assert (one[touching, J[f"{side}_elbow"], 1] - shoulder[:, 1]).min() > 0.03
        behind = ((two[touching, J[f"{side}_wrist"]] - one[touching, J["spine2"]]) * -f1[touching]).sum(-1)
        assert behind.min() > 0.0
        assert (one[touching, J[f"{side}_shoulder"], 1] - two[touching, J[f"{side}_elbow"], 1]).min() > 0.15
