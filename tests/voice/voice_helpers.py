"""Helpers for the voice tests: the JFK reference text and word error rate."""

from __future__ import annotations

REFERENCE = ("And so my fellow Americans, ask not what your country can do for you, "
             "ask what you can do for your country.")


def wer(reference: str, hypothesis: str) -> float:
    import re

    ref = re.findall(r"[a-z0-9']+", reference.lower())
    hyp = re.findall(r"[a-z0-9']+", hypothesis.lower())
    d = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(hyp) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (ref[i - 1] != hyp[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(hyp)] / max(1, len(ref))
