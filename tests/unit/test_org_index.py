"""An organisation's resource lists: creation order, pages, totals, and nothing counted twice."""
from __future__ import annotations

import pytest

from tables import org_index
from tests.unit.memory_tables import MemoryTable

P = 2
T0 = 1_700_000_000.0


@pytest.fixture
def index() -> MemoryTable:
    return MemoryTable("org_index")


def add_monitors(index: MemoryTable, org: str, ids: list[str], start: float = T0) -> None:
    for n, resource_id in enumerate(ids):
        org_index.add(index, P, org, "monitors", resource_id, start + n)


def test_an_empty_list_has_no_items_and_total_zero(index):
    assert org_index.page(index, P, "org_1", "monitors", 1, 20) == ([], 0)
    assert org_index.count(index, P, "org_1", "monitors") == 0


def test_resources_are_listed_in_creation_order_not_id_order(index):
    org_index.add(index, P, "org_1", "monitors", "mon_c", T0 + 0.001)
    org_index.add(index, P, "org_1", "monitors", "mon_a", T0 + 2)
    org_index.add(index, P, "org_1", "monitors", "mon_b", T0 + 1)
    assert org_index.page(index, P, "org_1", "monitors", 1, 10) == (["mon_c", "mon_b", "mon_a"], 3)


def test_created_in_the_same_millisecond_they_are_ordered_by_id(index):
    for resource_id in ["mon_b", "mon_a"]:
        org_index.add(index, P, "org_1", "monitors", resource_id, T0)
    assert org_index.page(index, P, "org_1", "monitors", 1, 10)[0] == ["mon_a", "mon_b"]


@pytest.mark.parametrize("page, per_page, expected", [
    (1, 3, ["m00", "m01", "m02"]),
    (2, 3, ["m03", "m04", "m05"]),
    (4, 3, ["m09"]),
    (5, 3, []),
    (1, 10, [f"m{n:02}" for n in range(10)]),
    (1, 100, [f"m{n:02}" for n in range(10)]),
    (3, 4, ["m08", "m09"]),
])
def test_pages_split_the_list_and_always_report_the_total(index, page, per_page, expected):
    add_monitors(index, "org_1", [f"m{n:02}" for n in range(10)])
    assert org_index.page(index, P, "org_1", "monitors", page, per_page) == (expected, 10)


def test_adding_the_same_resource_again_counts_it_once(index):
    for _ in range(3):
        org_index.add(index, P, "org_1", "monitors", "mon_1", T0)
    assert org_index.page(index, P, "org_1", "monitors", 1, 10) == (["mon_1"], 1)


def test_removing_takes_it_off_the_list_and_the_total(index):
    add_monitors(index, "org_1", ["mon_1", "mon_2", "mon_3"])
    org_index.remove(index, P, "org_1", "monitors", "mon_2", T0 + 1)
    assert org_index.page(index, P, "org_1", "monitors", 1, 10) == (["mon_1", "mon_3"], 2)


def test_removing_twice_or_removing_an_unknown_resource_changes_nothing(index):
    add_monitors(index, "org_1", ["mon_1", "mon_2"])
    org_index.remove(index, P, "org_1", "monitors", "mon_1", T0)
    org_index.remove(index, P, "org_1", "monitors", "mon_1", T0)
    org_index.remove(index, P, "org_1", "monitors", "mon_404", T0)
    assert org_index.page(index, P, "org_1", "monitors", 1, 10) == (["mon_2"], 1)


def test_removing_with_another_creation_time_does_not_remove(index):
    add_monitors(index, "org_1", ["mon_1"])
    org_index.remove(index, P, "org_1", "monitors", "mon_1", T0 + 60)
    assert org_index.count(index, P, "org_1", "monitors") == 1


def test_removing_the_last_resource_leaves_an_empty_list(index):
    add_monitors(index, "org_1", ["mon_1"])
    org_index.remove(index, P, "org_1", "monitors", "mon_1", T0)
    assert org_index.page(index, P, "org_1", "monitors", 1, 10) == ([], 0)


def test_re_adding_a_removed_resource_lists_it_again(index):
    add_monitors(index, "org_1", ["mon_1"])
    org_index.remove(index, P, "org_1", "monitors", "mon_1", T0)
    org_index.add(index, P, "org_1", "monitors", "mon_1", T0)
    assert org_index.page(index, P, "org_1", "monitors", 1, 10) == (["mon_1"], 1)


def test_other_organisations_do_not_see_each_others_resources(index):
    add_monitors(index, "org_1", ["a1", "a2"])
    add_monitors(index, "org_2", ["b1"])
    # "org_1" is a prefix of "org_10": keys must not run into each other
    add_monitors(index, "org_10", ["c1", "c2", "c3"])
    assert org_index.page(index, P, "org_1", "monitors", 1, 10) == (["a1", "a2"], 2)
    assert org_index.page(index, P, "org_2", "monitors", 1, 10) == (["b1"], 1)
    assert org_index.page(index, P, "org_10", "monitors", 1, 10) == (["c1", "c2", "c3"], 3)


def test_collections_of_one_organisation_are_separate(index):
    add_monitors(index, "org_1", ["mon_1", "mon_2"])
    org_index.add(index, P, "org_1", "services", "svc_1", T0)
    org_index.add(index, P, "org_1", "monitors_archive", "old_1", T0)
    assert org_index.page(index, P, "org_1", "monitors", 1, 10) == (["mon_1", "mon_2"], 2)
    assert org_index.page(index, P, "org_1", "services", 1, 10) == (["svc_1"], 1)
    assert org_index.page(index, P, "org_1", "monitors_archive", 1, 10) == (["old_1"], 1)


def test_a_page_reads_only_as_many_entries_as_it_shows(index):
    add_monitors(index, "org_1", [f"m{n:03}" for n in range(200)])
    scanned: list[int | None] = []
    scan = index.scan

    def counting_scan(*args, **kwargs):
        found = scan(*args, **kwargs)
        scanned.append(len(found))
        return found

    index.scan = counting_scan
    ids, total = org_index.page(index, P, "org_1", "monitors", 2, 20)
    assert (ids[0], ids[-1], total) == ("m020", "m039", 200)
    assert scanned == [40]
