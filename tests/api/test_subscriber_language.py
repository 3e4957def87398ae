"""subscriber.language through the API: set on create and by PATCH, refused when unknown,
used for the confirmation mail, and part of the person's data export."""

from typing import get_args

from app.i18n import SUPPORTED
from app.web.api.subscribers import Language


def _topic(api) -> None:
    assert api.post("/api/v1/topics", json={"slug": "news", "name": "News"}).status_code == 201


def test_the_api_language_values_are_the_supported_languages() -> None:
    assert set(get_args(Language)) == set(SUPPORTED)


def test_created_with_a_language_the_confirmation_goes_out_in_it(api, mailbox) -> None:
    _topic(api)
    response = api.post(
        "/api/v1/subscribers",
        json={"email": "lea@example.fr", "topics": ["news"], "language": "fr"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["language"] == "fr"
    [(_to, message)] = mailbox
    assert message["Content-Language"] == "fr"
    assert message["Subject"] == "Confirmez votre abonnement à Octomail"


def test_language_is_null_until_told_and_patch_sets_it(api) -> None:
    created = api.post("/api/v1/subscribers", json={"email": "ann@example.org"})
    assert created.json()["language"] is None
    person = created.json()["id"]
    patched = api.patch(f"/api/v1/subscribers/{person}", json={"language": "es"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["language"] == "es"
    untouched = api.patch(f"/api/v1/subscribers/{person}", json={"name": "Ann"})
    assert untouched.json()["language"] == "es"  # absent: left as it is
    assert api.get(f"/api/v1/subscribers/{person}").json()["language"] == "es"
    assert api.get(f"/api/v1/subscribers/{person}/data").json()["subscriber"]["language"] == "es"


def test_an_unknown_language_is_refused_with_the_ones_we_have(api) -> None:
    created = api.post(
        "/api/v1/subscribers", json={"email": "bob@example.org", "language": "klingon"}
    )
    assert created.status_code == 422
    assert "'en', 'fr', 'de' or 'es'" in created.text
    person = api.post("/api/v1/subscribers", json={"email": "bob@example.org"}).json()["id"]
    assert api.patch(f"/api/v1/subscribers/{person}", json={"language": "pt"}).status_code == 422
