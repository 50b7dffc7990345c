"""Many writers at once, over real HTTP (uvicorn in a thread): no lost write, no 5xx, no "database is locked",
and preconditions that hold under contention."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2

from tests.api.support import API, walk_pages

THREADS = 8
SERVICES_PER_THREAD = 25


def _run_together(count: int, work: Callable[[httpx2.Client, int], list[Any]], url: str, headers: dict) -> list:
    """Run ``work(client, index)`` in ``count`` threads that start at the same moment; all their results."""
    barrier = threading.Barrier(count, timeout=60)

    def run(index: int) -> list[Any]:
        with httpx2.Client(base_url=url, headers=headers, timeout=120) as client:
            client.get("/healthz")  # connect before the race starts
            barrier.wait()
            return work(client, index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(run, range(count)))
    return [item for result in results for item in result]


def _assert_no_server_errors(responses: list[httpx2.Response]) -> None:
    for response in responses:
        assert response.status_code < 500, response.text
        assert "database is locked" not in response.text


def test_concurrent_writers_lose_nothing(live_server, org) -> None:
    admin = org.headers("root:admin")

    def work(client: httpx2.Client, index: int) -> list[httpx2.Response]:
        responses = []
        for number in range(SERVICES_PER_THREAD):
            slug = f"w{index}-s{number}"
            body = {"slug": slug, "name": slug, "owner": "payments" if index % 2 else "search"}
            created = client.post(f"{API}/services", json=body)
            responses.append(created)
            changed = client.patch(f"{API}/services/{slug}", json={"tier": 1}, headers={"If-Match": '"1"'})
            responses.append(changed)
            described = client.patch(f"{API}/services/{slug}", json={"description": "busy", "version": 2})
            responses.append(described)
        return responses

    responses = _run_together(THREADS, work, live_server.url, admin)
    _assert_no_server_errors(responses)
    assert [response.status_code for response in responses].count(201) == THREADS * SERVICES_PER_THREAD
    assert [response.status_code for response in responses].count(200) == 2 * THREADS * SERVICES_PER_THREAD

    with httpx2.Client(base_url=live_server.url, headers=admin) as client:
        listed = client.get(f"{API}/services", params={"limit": 500}).json()["items"]
        written = {item["slug"]: item for item in listed if item["slug"].startswith("w")}
        assert len(written) == THREADS * SERVICES_PER_THREAD
        assert {(item["version"], item["tier"], item["description"]) for item in written.values()} == {(3, 1, "busy")}
        audit = walk_pages(client, f"{API}/audit", admin, 500, by="root", kind="Service")
        assert sorted(entry["action"] for entry in audit) == sorted(
            ["create", "update", "update"] * THREADS * SERVICES_PER_THREAD
        )


def test_concurrent_patches_with_the_same_if_match_only_one_wins(live_server, org) -> None:
    admin = org.headers("root:admin")

    def work(client: httpx2.Client, index: int) -> list[httpx2.Response]:
        change = {"description": f"writer {index}"}
        return [client.patch(f"{API}/services/checkout", json=change, headers={"If-Match": '"1"'})]

    responses = _run_together(THREADS, work, live_server.url, admin)
    _assert_no_server_errors(responses)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * (THREADS - 1), [response.text for response in responses]
    winner = next(response for response in responses if response.status_code == 200).json()
    with httpx2.Client(base_url=live_server.url, headers=admin) as client:
        current = client.get(f"{API}/services/checkout").json()
    assert current["version"] == 2 and current["description"] == winner["description"]


def test_concurrent_unconditional_patches_all_apply(live_server, org) -> None:
    """Without a precondition the writes are serialised, each on top of the last: none is refused or lost."""
    admin = org.headers("root:admin")
    rounds = 5

    def work(client: httpx2.Client, index: int) -> list[httpx2.Response]:
        return [
            client.patch(f"{API}/services/checkout", json={"description": f"writer {index} round {n}"})
            for n in range(rounds)
        ]

    responses = _run_together(THREADS, work, live_server.url, admin)
    _assert_no_server_errors(responses)
    assert {response.status_code for response in responses} == {200}, [r.text for r in responses]
    versions = sorted(response.json()["version"] for response in responses)
    assert versions == list(range(2, 2 + THREADS * rounds))
    with httpx2.Client(base_url=live_server.url, headers=admin) as client:
        assert client.get(f"{API}/services/checkout").json()["version"] == 1 + THREADS * rounds


def test_concurrent_dependency_changes_never_make_a_cycle(live_server, org) -> None:
    """Pairs of writers make a depend on b and b on a at once: one of each pair must see the other's edge."""
    admin = org.headers("root:admin")
    pairs = THREADS // 2
    with httpx2.Client(base_url=live_server.url, headers=admin) as client:
        for pair in range(pairs):
            for side in ("a", "b"):
                body = {"slug": f"{side}{pair}", "name": f"{side}{pair}", "owner": "payments"}
                assert client.post(f"{API}/services", json=body).status_code == 201

    def work(client: httpx2.Client, index: int) -> list[httpx2.Response]:
        pair, first = divmod(index, 2)
        source, target = (f"a{pair}", f"b{pair}") if first else (f"b{pair}", f"a{pair}")
        return [client.patch(f"{API}/services/{source}", json={"dependsOn": [target]})]

    responses = _run_together(2 * pairs, work, live_server.url, admin)
    _assert_no_server_errors(responses)
    assert sorted(response.status_code for response in responses) == [200] * pairs + [422] * pairs
    with httpx2.Client(base_url=live_server.url, headers=admin) as client:
        for pair in range(pairs):
            a = client.get(f"{API}/services/a{pair}").json()
            b = client.get(f"{API}/services/b{pair}").json()
            assert not (a["dependsOn"] and b["dependsOn"]), (a, b)
