"""One-click POSTs arriving together share a transaction (group commit) and still behave
one by one: each committed before its 200, bad ones 400, repeats idempotent."""

from __future__ import annotations

import asyncio

import httpx
from fastapi.testclient import TestClient

from app.links import unsubscribe_url
from app.tokens import Purpose, mint
from tests.support.unsubscribe import (
    ONE_CLICK,
    events,
    make_campaign,
    secret_of,
    seed,
    statuses,
)


def _path(subscriber_id: int, campaign_id: int) -> str:
    return unsubscribe_url(
        subscriber_id, campaign_id, secret=secret_of(subscriber_id)
    ).removeprefix("http://testserver")


def test_simultaneous_one_clicks_are_each_committed_once(settings_env: dict[str, str]) -> None:
    from app.main import create_app

    people = [seed(email=f"p{i}@example.com") for i in range(12)]
    news, offers = people[0].topics["news"], people[0].topics["offers"]
    campaign = make_campaign([news])
    paths = [_path(p.subscriber_id, campaign) for p in people]
    paths += paths[:3]  # mail providers retry: the same token again, in the same burst
    forged = "/u/" + mint(Purpose.PREFS, [people[0].subscriber_id, campaign])

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            posts = [c.post(p, data=ONE_CLICK) for p in paths]
            posts.append(c.post(forged, data=ONE_CLICK))
            posts.append(c.post(paths[5], data={"List-Unsubscribe": "Nope"}))
            return await asyncio.gather(*posts)

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * len(paths) + [400, 400]
    assert all("You are unsubscribed" in r.text for r in responses[: len(paths)])
    for person in people:
        assert statuses(person.subscriber_id) == {news: "unsubscribed", offers: "subscribed"}
        [event] = events(person.subscriber_id)
        assert (event.channel, event.topic_id, event.campaign_id) == ("one_click", news, campaign)


def test_one_click_works_with_a_testclient_outside_its_context(
    settings_env: dict[str, str],
) -> None:
    """Without `with`, TestClient runs each request on a fresh event loop."""
    from app.main import create_app

    people = [seed(email=f"q{i}@example.com") for i in range(3)]
    client = TestClient(create_app(), base_url="http://testserver")
    for person in people:
        assert client.post(_path(person.subscriber_id, 0), data=ONE_CLICK).status_code == 200
        assert [e.action for e in events(person.subscriber_id)] == ["unsubscribe"]
