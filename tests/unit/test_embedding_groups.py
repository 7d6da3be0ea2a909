"""How the embedder splits a request's inputs into decodes."""

from __future__ import annotations

from mingyan.engine.embedding import plan_groups


def test_groups_respect_tokens_and_inputs_and_keep_order() -> None:
    assert plan_groups([100, 100, 100, 300, 50], 256, 64) == [[0, 1], [2], [3], [4]]
    assert plan_groups([10] * 5, 512, 2) == [[0, 1], [2, 3], [4]]
    assert plan_groups([600], 512, 64) == [[0]]  # a long input goes alone
    assert plan_groups([], 512, 64) == []
