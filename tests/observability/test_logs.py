"""Logs carry request ids and no personal data: real flows (sign-up, confirmation, one-click
unsubscribe, API calls with a bearer token, a campaign sent to a real SMTP server, an opt-out
by mail read by the poller) with Octomail's logging at DEBUG in JSON, then every address,
name, token and key used is looked for in what was written."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.poller import poll_once
from app.links import unsubscribe_url
from app.models import Subscriber, Topic
from app.observability.logs import REQUEST_ID, hashed, setup_logging, uvicorn_log_config
from app.settings import get_settings
from tests.conftest import TEST_PEPPER, TEST_SECRET
from tests.support.campaigns import BackgroundWorker, campaign_status
from tests.support.inbound import MaildirMailbox, load_fixture
from tests.support.unsubscribe import ONE_CLICK
from tests.support.wait import wait_until

_LEVELS = ("app", "octomail", "uvicorn")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Octomail's logging at DEBUG in JSON into a buffer; the previous setup comes back."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in _LEVELS})
    stream = io.StringIO()
    setup_logging(level="DEBUG", fmt="json", pepper=lambda: get_settings().pepper, stream=stream)
    yield stream
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def _confirm_path(mailbox: list, address: str) -> str:
    for rcpts, message in mailbox:
        if address in rcpts:
            body = message.get_body(("plain",)).get_content()
            found = re.search(r"http://testserver(/confirm/\S+)", body)
            if found:
                return found.group(1)
    raise AssertionError(f"no confirmation mail to {address}")


def test_real_flows_log_no_address_name_token_or_key(
    captured: io.StringIO, mailbox: list, api: TestClient, admin_token: str
) -> None:
    secrets: set[str] = {TEST_SECRET, TEST_PEPPER, admin_token, "admin@example.org"}
    assert api.post("/api/v1/topics", json={"slug": "news", "name": "News"}).status_code == 201

    # Sign-up on the public form's JSON endpoint, then the link from the confirmation mail.
    signup = {"email": "zoe.signup@example.com", "topics": ["news"], "consent": True}
    assert api.post("/subscribe", json=signup).status_code == 202
    confirm = _confirm_path(mailbox, signup["email"])
    assert api.post(confirm).status_code == 200
    secrets |= {signup["email"], confirm.rsplit("/", 1)[1]}

    # API calls with the bearer token: add people with names, search by address.
    people = {"yann.api@example.com": "Yannick Quillivic", "carol@example.com": "Carol Jones"}
    for address, name in people.items():
        created = api.post(
            "/api/v1/subscribers",
            json={
                "email": address,
                "name": name,
                "topics": ["news"],
                "preconfirm": True,
                "consent_source": "tested",
            },
        )
        assert created.status_code == 201, created.text
        secrets |= {address, name}
    assert api.get("/api/v1/subscribers", params={"q": "yann.api"}).status_code == 200

    # A campaign sent to the real SMTP server.
    created = api.post(
        "/api/v1/campaigns",
        json={
            "name": "News",
            "subject": "Hi {{ first_name }}",
            "body": "Hello",
            "topics": ["news"],
        },
    )
    campaign_id = created.json()["id"]
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    with BackgroundWorker(get_settings()):
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")
    assert len([m for rcpts, m in mailbox if "yann.api@example.com" in rcpts]) == 1

    # One-click unsubscribe with the token from the mail Yann received.
    with Session(get_engine()) as session:
        yann = session.exec(
            select(Subscriber).where(Subscriber.email == "yann.api@example.com")
        ).one()
        secrets.add(yann.link_secret)
        assert session.exec(select(Topic)).first() is not None
    link = unsubscribe_url(yann.id, campaign_id, secret=yann.link_secret)
    path = link.removeprefix("http://testserver")
    assert api.post(path, data=ONE_CLICK).status_code == 200
    secrets.add(path.rsplit("/", 1)[1])

    # Carol asks to be taken off by mail; the poller reads it from the Maildir.
    inbox = MaildirMailbox(Path(get_settings().var_dir) / "mail" / "inbox")
    inbox.deliver([load_fixture("plain_request_en")])
    assert poll_once(get_settings())["seen"] == 1

    # A request id given by the caller comes back and is on the lines of that request.
    answer = api.get("/api/v1/topics", headers={"X-Request-ID": "trace-42"})
    assert answer.headers["x-request-id"] == "trace-42"

    written = captured.getvalue()
    lines = [json.loads(line) for line in written.splitlines()]
    # The flows did log (the search below means something): each request, the worker, the
    # confirmation and the acknowledgement of Carol's mail.
    loggers = [entry["logger"] for entry in lines]
    assert loggers.count("app.access") >= 10, written
    assert "app.sending.dispatcher" in loggers
    assert loggers.count("app.mail.transactional") == 2
    assert any(e.get("request_id") == "trace-42" and e["logger"] == "app.access" for e in lines)
    leaked = sorted(s for s in secrets if s and s.lower() in written.lower())
    assert leaked == []


def test_an_address_or_token_in_a_message_is_hashed_or_masked(captured: io.StringIO) -> None:
    log = logging.getLogger("app.tests")
    log.warning("refused <Zoé.Doe@Example.com> with Bearer octo_abcdefghijklmnop")
    try:
        raise ValueError("550 5.1.1 <zoe.doe@example.com>: unknown")
    except ValueError:
        log.exception("failed for %s", "zoe.doe@example.com")
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["message"] == f"refused <{hashed('zoé.doe@example.com')}> with Bearer [token]"
    assert "@" not in captured.getvalue()
    assert hashed("zoe.doe@example.com") in second["exception"]
    assert second["message"] == f"failed for {hashed('zoe.doe@example.com')}"


def test_a_request_id_is_made_when_none_or_a_bad_one_is_given(client: TestClient) -> None:
    made = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    bad = client.get("/healthz", headers={"X-Request-ID": "a b\tc"}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", bad)
    assert REQUEST_ID.get() is None  # nothing leaks out of the request


def test_uvicorn_workers_get_the_same_json_setup(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging.config

    monkeypatch.setenv("OCTOMAIL_LOG_FORMAT", "json")
    get_settings.cache_clear()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        logging.config.dictConfig(uvicorn_log_config(get_settings()))
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
        logging.getLogger("app.x").debug("not at INFO")
        logging.getLogger("sqlalchemy.engine").info("SELECT secret")
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["logger"], e["message"]) for e in lines] == [
        ("uvicorn.error", "Started server process [7]")
    ]
