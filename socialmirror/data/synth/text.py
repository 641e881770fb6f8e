"""The two sentences of a sample, written as the annotator of the paper's Table 1 is asked to write them.

Rules (Table 1, rule 2): "text 1" describes person 1's action from person 1's perspective and "text 2"
person 2's from theirs; a sentence never says "person 1"/"person 2": the subject is "a person" and the
partner is "others"/"the other"; the sentence agrees with the contacts (which hand touches what).
Several phrasings per type, drawn at random, so a text model cannot learn one template per label.
"""
from __future__ import annotations

import numpy as np

# {h}: the acting hand ("right hand"), {o}: the partner's hand, {p}: his/her, {r}: him/her (self),
# {q}: him/her (the partner), {sd}/{osd}: the own/partner's side word ("left").
# Person 1 templates, person 2 templates.
TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "handshake": (
        ("a person shakes hands with others using {p} {h}.",
         "a person reaches out {p} {h} and shakes the other's {o}.",
         "a person greets others with a handshake, holding the other's {o} with {p} {h}.",
         "a person grips the other's {o} with {p} {h} and shakes it up and down."),
        ("a person shakes hands with others using {p} {h}.",
         "a person takes the other's {o} in {p} {h} and shakes it.",
         "a person returns the handshake with {p} {h}.",
         "a person holds the other's {o} with {p} {h} in a handshake."),
    ),
    "high_five": (
        ("a person gives others a high five with {p} {h}.",
         "a person raises {p} {h} and slaps the other's {o} above the head.",
         "a person high-fives others, {p} {h} meeting the other's {o}.",
         "a person lifts {p} {h} high and claps it against the other's palm."),
        ("a person raises {p} {h} and high-fives others.",
         "a person meets the other's {o} with {p} {h} in a high five.",
         "a person slaps the other's raised {o} with {p} {h}.",
         "a person returns the high five with {p} {h}."),
    ),
    "fist_bump": (
        ("a person bumps fists with others using {p} {h}.",
         "a person makes a fist with {p} {h} and touches the other's fist.",
         "a person greets others with a fist bump of {p} {h}.",
         "a person taps {p} {sd} fist against the other's {osd} fist."),
        ("a person bumps {p} {sd} fist against the other's fist.",
         "a person returns the fist bump with {p} {h}.",
         "a person meets the other's fist with {p} {sd} fist.",
         "a person fist-bumps others with {p} {h}."),
    ),
    "wave": (
        ("a person waves {p} {h} at others.",
         "a person raises {p} {h} and waves to others across the room.",
         "a person greets others from a distance by waving {p} {h}.",
         "a person lifts {p} {h} beside {p} head and waves to the other."),
        ("a person waves back at others with {p} {h}.",
         "a person answers the greeting by waving {p} {h}.",
         "a person raises {p} {h} and waves to others.",
         "a person waves {p} {h} at the other without touching."),
    ),
    "point_at": (
        ("a person points at others with {p} {h}.",
         "a person raises {p} {h} and points at the other.",
         "a person stretches out {p} {h} to point at others.",
         "a person singles out the other by pointing {p} {h} at {q}."),
        ("a person stands and watches others point at {r}, leaning back a little.",
         "a person is pointed at by others and leans back slightly.",
         "a person looks at the other who is pointing at {r}.",
         "a person notices others pointing and draws back a little."),
    ),
    "push": (
        ("a person pushes others on the chest with both hands.",
         "a person puts both hands on the other's upper chest and pushes {q} back.",
         "a person steps in and shoves others away with both palms.",
         "a person pushes the other backwards, {p} hands on the other's chest."),
        ("a person is pushed on the chest by others and sways back.",
         "a person leans back as others shove {p} chest with both hands.",
         "a person has both of the other's palms pushed against {p} chest and rocks backwards.",
         "a person gets pushed away by others, hands on {p} upper chest."),
    ),
    "punch_block": (
        ("a person throws a punch at others with {p} {sd} fist, which is blocked.",
         "a person punches at the other's head with {p} {sd} fist, hitting the other's raised forearm.",
         "a person strikes at others with {p} {sd} fist, and the fist lands on the other's {osd} arm.",
         "a person jabs {p} {sd} fist toward others and is blocked."),
        ("a person blocks the punch of others with {p} {sd} forearm.",
         "a person raises {p} {sd} arm in front of {p} face and stops the other's fist.",
         "a person defends against the other's punch, {p} {sd} forearm taking the hit.",
         "a person guards {p} head with {p} {sd} arm as others punch."),
    ),
    "kick_dodge": (
        ("a person kicks at others with {p} {sd} foot and misses.",
         "a person lifts {p} {sd} knee and snaps a front kick at the other, who leans away.",
         "a person throws a kick with {p} {sd} leg toward the other's stomach without touching {q}.",
         "a person raises {p} {sd} leg and kicks forward at others, then puts the foot back down."),
        ("a person leans back and dodges the kick of others, hands raised.",
         "a person sways away from the other's kick with both hands up.",
         "a person evades a front kick by leaning back, guarding {p} face.",
         "a person sees the other kick and pulls {p} upper body back out of reach."),
    ),
    "dance": (
        ("a person dances with others holding both of the other's hands.",
         "a person sways with others, {p} left hand holding the other's right hand and {p} right hand "
         "holding the other's left hand.",
         "a person holds hands with others and rocks side to side to the music.",
         "a person dances facing others, both hands joined with the other's."),
        ("a person dances with others holding both of the other's hands.",
         "a person sways with others, {p} right hand holding the other's left hand and {p} left hand "
         "holding the other's right hand.",
         "a person holds hands with the other and sways along.",
         "a person dances facing others with both hands held."),
    ),
    "pass_object": (
        ("a person hands an object to others with {p} {h}.",
         "a person passes something to the other, {p} {h} touching the other's hand.",
         "a person reaches out {p} {h} and gives the other an object.",
         "a person holds out an object in {p} {h} for the other to take."),
        ("a person takes an object from others with {p} {h}.",
         "a person receives something from the other, {p} {h} touching the other's hand.",
         "a person reaches out {p} {h} and takes the object the other offers.",
         "a person accepts an object from others with {p} {h}."),
    ),
    "pat_shoulder": (
        ("a person pats others on the {osd} shoulder with {p} {h}.",
         "a person puts {p} {h} on the other's {osd} shoulder and pats it a few times.",
         "a person reaches out and gives the other a friendly pat on the shoulder with {p} {h}.",
         "a person taps the top of the other's {osd} shoulder with {p} open {h}."),
        ("a person is patted on {p} {sd} shoulder by others.",
         "a person stands still while the other pats {p} {sd} shoulder.",
         "a person feels the other's hand on {p} {sd} shoulder and looks at {q}.",
         "a person gets a friendly pat on the {sd} shoulder from others."),
    ),
    "arm_around": (
        ("a person puts {p} {sd} arm around the other's shoulders.",
         "a person stands beside others with {p} arm around the other, {p} {h} resting on the other's {osd} shoulder.",
         "a person wraps {p} {sd} arm around others and rests {p} hand on the far shoulder.",
         "a person stands next to the other and puts an arm around {q}."),
        ("a person stands beside others with the other's arm around {p} shoulders.",
         "a person stands still while the other puts an arm around {r}.",
         "a person lets the other rest a hand on {p} {sd} shoulder, side by side.",
         "a person stands next to others, the other's arm around {p} shoulders."),
    ),
    "hug": (
        ("a person hugs others, both arms over the other's shoulders.",
         "a person leans over the other and wraps {p} arms around {q} shoulders.",
         "a person embraces others, {p} hands resting on the other's shoulder blades.",
         "a person gives the other a warm hug, arms over the other's shoulders."),
        ("a person hugs others, both arms around the other's back.",
         "a person wraps {p} arms around the other under the other's arms.",
         "a person embraces others, {p} cheek against the other's chest.",
         "a person returns the other's hug, {p} hands on the other's back."),
    ),
    "walk_together": (
        ("a person walks side by side with others.",
         "a person walks forward next to the other.",
         "a person strolls together with others at the same pace.",
         "a person walks along beside others."),
        ("a person walks side by side with others.",
         "a person walks next to the other in the same direction.",
         "a person keeps pace with others while walking.",
         "a person strolls along beside the other."),
    ),
    "lead_by_hand": (
        ("a person walks ahead leading others by the {h}.",
         "a person holds the other's hand and pulls {q} along behind.",
         "a person leads the other forward by the hand, reaching back with {p} {sd} arm.",
         "a person walks in front, holding hands with others following behind."),
        ("a person follows others, led by the {h}.",
         "a person is pulled along by the hand, walking behind the other.",
         "a person holds the other's hand with {p} {h} and follows {q}.",
         "a person walks behind others, hand in hand."),
    ),
    "sit_and_stand": (
        ("a person sits next to others, chatting, then stands up.",
         "a person sitting beside the other gets up from the seat.",
         "a person talks with others while seated side by side, and rises.",
         "a person sits with the other and then stands."),
        ("a person sits beside others, talking.",
         "a person sits next to the other, turning to talk.",
         "a person chats with others sitting side by side.",
         "a person sits with the other and listens."),
    ),
    "hook_duck": (
        ("a person throws a {sd} hook at the other's head.",
         "a person swings {p} {sd} fist round at others, who duck under it.",
         "a person punches at the other's head with a wide hook and misses.",
         "a person attacks others with a swinging punch."),
        ("a person ducks under the other's punch and comes back up.",
         "a person bends {p} knees to dodge a hook from others.",
         "a person crouches with {p} hands up as the other's fist swings over {p} head.",
         "a person evades the other's swing by ducking."),
    ),
    "shove": (
        ("a person shoves others hard in the chest with both hands.",
         "a person pushes the other away, and the other stumbles back.",
         "a person knocks others back a step with a two-handed shove.",
         "a person shoves the other, both palms on the other's chest."),
        ("a person is shoved by others and stumbles back a step.",
         "a person staggers backwards after the other pushes {r}.",
         "a person gets pushed hard in the chest and steps back.",
         "a person is knocked back by the other's shove."),
    ),
    "walk_past": (
        ("a person walks past others coming the other way.",
         "a person walks toward the other and passes by without stopping.",
         "a person crosses paths with others, passing the other on the way.",
         "a person walks on and passes others who walk the opposite way."),
        ("a person walks past others coming the other way.",
         "a person passes the other while walking in the opposite direction.",
         "a person walks toward others and goes past them.",
         "a person keeps walking and passes by the other."),
    ),
    "talk": (
        ("a person talks to others, gesturing with {p} hands.",
         "a person speaks to the other from a few steps away, moving {p} {h} while talking.",
         "a person explains something to others, {p} {h} beating the words in front of {p} chest.",
         "a person chats with the other at a distance, then listens."),
        ("a person listens to others and then answers, gesturing with {p} hands.",
         "a person nods while the other speaks, then replies moving {p} {h}.",
         "a person stands a few steps from others, listening and then talking.",
         "a person has a conversation with the other without touching."),
    ),
}


def hand_phrase(side: str) -> str:
    return f"{side} hand"


def sentences(action: str, rng: np.random.Generator, pronouns: tuple[str, str], side_a: str | None,
              side_b: str | None) -> tuple[str, str]:
    """Two sentences ("text 1", "text 2") for a sample, drawn from the type's phrasings."""
    ta, tb = TEMPLATES[action]
    out = []
    for k, (pool, own, partner) in enumerate(((ta, side_a, side_b), (tb, side_b, side_a))):
        s = pool[int(rng.integers(len(pool)))]
        obj = {"his": "him", "her": "her"}
        fields = {"p": pronouns[k], "h": hand_phrase(own or "right"), "o": hand_phrase(partner or "right"),
                  "sd": own or "right", "osd": partner or "right",
                  "r": obj[pronouns[k]], "q": obj[pronouns[1 - k]]}
        out.append(s.format(**fields))
    return out[0], out[1]
