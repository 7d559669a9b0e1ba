"""Where a model shard's records go: `streamsvc.engine.records_partition` and its setting."""

import pytest
from kafka.partitioner.default import murmur2

from streamsvc.config import ConfigError, load_settings
from streamsvc.engine import records_partition


def _hashed(key: str, n: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % n


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 6, 8, 12, 32])
def test_a_models_shards_take_distinct_partitions(partitions: int) -> None:
    """Up to the partition count, no two shards of a model share a records partition (so no
    two share a worker once there are as many workers); hashing each shard's key did not
    give that (4 partitions: default#0, #1 and #2 all on partition 2)."""
    for model in ("default", "fraud", "tenant-7", "a.b_c"):
        for shards in range(2, partitions + 1):
            placed = [records_partition(f"{model}#{k}", partitions) for k in range(shards)]
            assert len(set(placed)) == shards, (model, placed)
            assert all(0 <= p < partitions for p in placed)


def test_an_unsharded_model_and_the_hash_setting_keep_the_key_hash() -> None:
    """A model without shards stays where Kafka's default partitioner put it (its snapshots
    stay valid); "hash" places every shard by its own key, as workers before the setting."""
    assert [_hashed(f"default#{k}", 4) for k in range(3)] == [2, 2, 2]  # why `spread` exists
    for n in (1, 4, 7):
        for key in ("default", "users", "m#0", "m#5"):
            assert records_partition(key, n, spread=False) == _hashed(key, n)
        assert records_partition("default", n) == _hashed("default", n)


def test_placement_is_a_checked_setting() -> None:
    assert load_settings(None, {}).worker["shard_placement"] == "spread"
    assert load_settings(None, {"STREAMSVC_WORKER__SHARD_PLACEMENT": "hash"}
                         ).worker["shard_placement"] == "hash"
    with pytest.raises(ConfigError, match="worker.shard_placement"):
        load_settings(None, {"STREAMSVC_WORKER__SHARD_PLACEMENT": "random"})


def test_a_restored_partition_with_shards_placed_elsewhere_is_named_in_the_log(caplog) -> None:
    """A snapshot made under the old placement ("hash") holds shards whose records now go to
    other partitions: the worker says which, and how to keep what they learned."""
    import logging

    from tests.test_engine_units import _engine

    e = _engine(spread_shards=True)
    try:
        e._n_records = 4
        st = e.pipe.proc.state(2)  # where "hash" put default#0, #1 and #2
        for k in range(3):
            e.pipe.proc.host(st, f"default#{k}")
        with caplog.at_level(logging.WARNING, logger="streamsvc.engine"):
            e._warn_misplaced(2)
        text = caplog.text
        moved = [f"default#{k}" for k in range(3) if records_partition(f"default#{k}", 4) != 2]
        assert moved and all(rk in text for rk in moved), text
        assert "shard_placement" in text and "hash" in text
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="streamsvc.engine"):
            e._warn_misplaced(3)  # nothing restored there: nothing to say
        assert caplog.text == ""
    finally:
        e.consumer.close()
