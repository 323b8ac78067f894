"""The per-object lock table: one holder at a time, and no entry left once nobody holds or waits."""

from __future__ import annotations

import threading
import time

from feast_lineage.controller.locks import ObjectLocks


def test_the_table_shrinks_back_to_empty() -> None:
    locks = ObjectLocks()
    for index in range(1000):
        with locks.hold("FeatureStoreProject", "ns", f"p{index}"):
            assert len(locks) == 1
    assert len(locks) == 0


def test_one_holder_at_a_time_and_waiters_keep_the_entry() -> None:
    locks = ObjectLocks()
    inside: list[int] = []
    overlaps: list[int] = []

    def work(worker: int) -> None:
        with locks.hold("MaterializationJob", "ns", "run"):
            inside.append(worker)
            if len(inside) > 1:
                overlaps.append(worker)
            time.sleep(0.01)
            inside.remove(worker)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [] and len(locks) == 0


def test_an_exception_inside_releases_and_forgets() -> None:
    locks = ObjectLocks()
    try:
        with locks.hold("FeatureStoreProject", "ns", "p"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(locks) == 0
    with locks.hold("FeatureStoreProject", "ns", "p"):
        pass
