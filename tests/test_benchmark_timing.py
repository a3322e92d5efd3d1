"""The benchmarks' timing helpers: what runs when, and the cache evictor.

No times are asserted (the machines are shared); the tests pin the order
of the calls, what the size reader makes of sysfs files, and the errors.
"""

import numpy as np
import pytest

from benchmarks.timing import CacheEvictor
from benchmarks.timing import interleaved_median_seconds
from benchmarks.timing import largest_cache_bytes


def test_before_runs_ahead_of_every_call_outside_the_timed_span():
    events = []
    fns = [lambda: events.append("a"), lambda: events.append("b")]
    medians = interleaved_median_seconds(
        fns, repeats=3, warmup=1, before=lambda: events.append("evict")
    )
    assert len(medians) == 2
    # One warm-up round and three timed rounds, each call evicted first.
    assert events == ["evict", "a", "evict", "b"] * 4


def test_without_before_only_the_functions_run():
    events = []
    fns = [lambda: events.append("a"), lambda: events.append("b")]
    interleaved_median_seconds(fns, repeats=2, warmup=0)
    assert events == ["a", "b"] * 2


def _cache_tree(root, sizes):
    for index, text in enumerate(sizes):
        folder = root / f"index{index}"
        folder.mkdir()
        (folder / "size").write_text(text + "\n")
    return root


def test_largest_cache_reads_every_unit(tmp_path):
    root = _cache_tree(tmp_path, ["48K", "32K", "1M", "32768K", "4096"])
    assert largest_cache_bytes(str(root)) == 32768 * 1024


def test_largest_cache_skips_sizes_it_cannot_read(tmp_path):
    root = _cache_tree(tmp_path, ["", "unknown", "2M", "3G?"])
    assert largest_cache_bytes(str(root)) == 2 * 2**20


def test_largest_cache_without_sysfs_is_none(tmp_path):
    assert largest_cache_bytes(str(tmp_path / "missing")) is None


def test_evictor_writes_its_whole_buffer_on_every_call():
    evict = CacheEvictor(nbytes=4096)
    assert evict.nbytes == 4096
    evict()
    evict()
    np.testing.assert_array_equal(evict._buffer, np.full(512, 2.0))


def test_evictor_default_is_twice_the_largest_cache():
    cache = largest_cache_bytes()
    expected = 2 * cache if cache else 64 * 2**20
    assert CacheEvictor.default_nbytes() == expected


@pytest.mark.parametrize("nbytes", [0, 7, -64])
def test_evictor_rejects_a_buffer_too_small(nbytes):
    with pytest.raises(ValueError, match=f"received: {nbytes}"):
        CacheEvictor(nbytes=nbytes)
