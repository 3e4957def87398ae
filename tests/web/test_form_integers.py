"""Topic ids in public forms: '²' passes str.isdigit() but not int(); it was a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.links import preferences_url, unsubscribe_url
from app.web.params import form_ids
from tests.support.unsubscribe import (
    Seeded,
    form_fields,
    make_campaign,
    secret_of,
    seed,
    statuses,
)


@pytest.fixture
def seeded(settings_env: dict[str, str]) -> Seeded:
    return seed()


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_form_ids_keep_only_ids_a_row_can_have() -> None:
    assert form_ids(
        [
            "3",
            " 4 ",
            "²",
            "٣",
            "-1",
            "0",
            "2147483647",
            "2147483648",
            "99999999999999999999",
            "",
            "x",
        ]
    ) == [3, 4, 2147483647]


@pytest.mark.parametrize("bad", ["²", "٣", "99999999999999999999"])
def test_undo_with_non_ascii_or_huge_topic_ids_is_not_a_500(
    client: TestClient, seeded: Seeded, bad: str
) -> None:
    news = seeded.topics["news"]
    url = _path(
        unsubscribe_url(
            seeded.subscriber_id, make_campaign([news]), secret=secret_of(seeded.subscriber_id)
        )
    )
    action, fields = form_fields(client.get(url).text, url)
    assert client.post(action, data=fields).status_code == 200
    undone = client.post(f"{url}/undo", data={"topics": f"{bad},{news}", "all": "0"})
    assert undone.status_code == 200
    assert statuses(seeded.subscriber_id)[news] == "subscribed"  # the good id still counts


@pytest.mark.parametrize("bad", ["²", "٣", "99999999999999999999"])
def test_preferences_with_non_ascii_or_huge_topic_ids_is_not_a_500(
    client: TestClient, seeded: Seeded, bad: str
) -> None:
    topics = seeded.topics
    response = client.post(
        _path(preferences_url(seeded.subscriber_id, secret=secret_of(seeded.subscriber_id))),
        data={"topics_shown": "1", "name": "Jane", "topic": [bad, str(topics["news"])]},
    )
    assert response.status_code == 200
    assert statuses(seeded.subscriber_id) == {
        topics["news"]: "subscribed",
        topics["offers"]: "unsubscribed",
    }
