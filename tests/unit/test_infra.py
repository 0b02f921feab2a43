"""The local runners' own rules."""

from infra.local_kafka import _cluster_id


def test_a_kafka_cluster_id_never_looks_like_an_option() -> None:
    ids = {_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(cluster_id) == 22 for cluster_id in ids)
