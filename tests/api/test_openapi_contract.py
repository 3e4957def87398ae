"""The OpenAPI schema of /api/v1 is the contract: it documents the error answers each route
gives (all `{"detail": ...}`), and times carry their zone."""

import re

from app.main import create_app


def test_every_route_documents_its_errors():
    schema = create_app().openapi()
    operations = [
        (method.upper(), path, operation)
        for path, methods in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in methods.items()
    ]
    seen = 0
    for method, path, operation in operations:
        seen += 1
        responses = operation["responses"]
        assert {"401", "413", "422"} <= set(responses), (method, path)
        if re.search(r"\{\w+_id\}", path):
            assert "404" in responses, (method, path)
        if method in {"POST", "PATCH", "DELETE"} and not path.endswith("/preview"):
            assert "403" in responses, (method, path)  # viewers may not write
        error = responses["422"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
    assert seen >= 30
    detail = schema["components"]["schemas"]["ErrorBody"]["properties"]["detail"]
    assert {"type": "string"} in detail["anyOf"]  # domain errors: one sentence


def test_domain_errors_and_field_errors_match_the_documented_422(api):
    one_sentence = api.get("/api/v1/subscribers", params={"topic": "no-such-topic"})
    assert one_sentence.status_code == 422
    assert isinstance(one_sentence.json()["detail"], str)
    fields = api.post("/api/v1/topics", json={"slug": "Not A Slug"})
    assert fields.status_code == 422
    assert {"loc", "msg", "type"} <= set(fields.json()["detail"][0])


def test_times_are_rfc3339_utc(api):
    topic = api.post("/api/v1/topics", json={"slug": "news", "name": "News"}).json()
    assert topic["created_at"].endswith("Z")
    assert api.get(f"/api/v1/topics/{topic['id']}").json()["created_at"].endswith("Z")
    token = api.get("/api/v1/tokens").json()["items"][0]
    assert token["created_at"].endswith("Z")
    assert token["last_used_at"].endswith("Z")
    assert api.get("/api/v1/users").json()["items"][0]["created_at"].endswith("Z")


def test_response_models_keep_the_answers_shapes(api):
    """Declaring response models added no keys: `confirmation` only where a mail was due,
    `progress` only on a single campaign."""
    api.post("/api/v1/topics", json={"slug": "news", "name": "News"})
    ann = api.post(
        "/api/v1/subscribers",
        json={
            "email": "ann@example.org",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "fair",
        },
    )
    assert ann.status_code == 201
    assert "confirmation" not in ann.json()
    assert "confirmation" not in api.get(f"/api/v1/subscribers/{ann.json()['id']}").json()
    campaign = api.post(
        "/api/v1/campaigns", json={"name": "N", "subject": "S", "body": "B", "topics": ["news"]}
    ).json()
    assert campaign["progress"]["total"] == 0
    assert campaign["from"] == ""
    assert "progress" not in api.get("/api/v1/campaigns").json()["items"][0]
