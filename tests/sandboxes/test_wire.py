"""The wire format's promises about outputs: long outputs leave the sandbox as digests that match
only the same value, and sets come back in the order the sender iterated them."""

from __future__ import annotations

import math

from june_pipelines.sandboxes import wire


def test_long_exact_outputs_travel_as_digests_that_match_only_the_same_value() -> None:
    words = [f"word{i}" for i in range(200_000)]  # canonical (no floats), over DIGEST_OVER
    text = wire.dumps_output(words)
    assert len(text) < 100 and wire.loads(text) == wire.loads(wire.dumps_output(list(words)))
    assert wire.loads(text) != wire.loads(wire.dumps_output([*words[:-1], "other"]))
    short = ["a", "b"]
    assert wire.loads(wire.dumps_output(short)) == short  # short outputs stay values


def test_float_outputs_past_the_exact_only_limit_are_digests_too() -> None:
    """Below EXACT_ONLY_OVER a float output stays a value (compared with a tolerance); above it, it
    would not fit through the sandbox's pipe, so it travels as a digest of its exact text."""
    medium = [i / 7 for i in range(100_000)]  # about 2 MB: floats, so not canonical
    assert wire.loads(wire.dumps_output(medium)) == medium
    n = wire.EXACT_ONLY_OVER // 12  # most of these floats write 17-19 characters and a comma
    huge = [i / 7 for i in range(n)]
    digest = wire.loads(wire.dumps_output(huge))
    assert isinstance(digest, wire.Digest) and digest.length > wire.EXACT_ONLY_OVER
    assert digest == wire.loads(wire.dumps_output(list(huge)))
    nearest = math.nextafter(huge[-1], math.inf)  # within any tolerance, but not the same text
    assert digest != wire.loads(wire.dumps_output([*huge[:-1], nearest]))


def test_sets_keep_the_senders_iteration_order() -> None:
    literal = {12, 13, 14, 15, 16}  # a literal of constants: CPython iterates it 16, 12, 13, 14, 15
    by_items = {x for x in (16, 12, 13, 14, 15)}  # built item by item: 12, ..., 16
    for value in (literal, by_items, frozenset(literal)):
        back = wire.loads(wire.dumps(value))
        assert type(back) is type(value) and back == value and list(back) == list(value)
