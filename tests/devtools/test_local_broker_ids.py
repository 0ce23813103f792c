"""The local broker's cluster ids: valid for Kafka's storage tool every time."""

from __future__ import annotations

import base64

from devtools.local_broker import new_cluster_id


def test_when_many_cluster_ids_are_made_then_none_starts_with_a_dash_and_each_is_16_bytes() -> None:
    ids = [new_cluster_id() for _ in range(5000)]  # ~78 would start with "-" without the check
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
