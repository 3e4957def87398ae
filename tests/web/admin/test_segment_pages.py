"""/admin/segments: build rules row by row (without JS: a button re-renders with one more
row), count on demand with the first matches, save, refuse bad rules next to their field,
delete after a confirmation page (refused while a campaign uses it, naming it)."""

from __future__ import annotations

from app.campaigns.service import create_campaign
from app.db import session_scope
from app.models import Role
from app.segments import service as segments
from tests.support.campaigns import add_subscriber, make_topic


def _people() -> None:
    with session_scope() as s:
        add_subscriber(s, "ann@example.org", name="Ann", attributes={"city": "Paris", "age": 40})
        add_subscriber(s, "bob@example.org", attributes={"city": "Lyon", "age": 20})
        add_subscriber(s, "cy@example.org", status="unsubscribed", attributes={"city": "Paris"})


def _rules(**row: str) -> dict[str, str]:
    return {"field_0": "attributes", "key_0": "", "op_0": "=", "value_0": "", **row}


def test_build_count_and_save_without_javascript(sign_in_as) -> None:
    _people()
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get("/admin/segments/new")
    assert page.status_code == 200
    assert 'name="field_0"' in page.text
    assert "Count matches" in page.text
    assert "subscribers match" not in page.text
    form = {"csrf_token": editor.csrf, "name": "Paris", "match": "all"}
    form |= _rules(key_0="city", value_0="Paris")
    added = editor.client.post("/admin/segments/new", data=form | {"action": "add"})
    assert added.status_code == 200
    assert 'name="field_1"' in added.text
    assert 'value="Paris"' in added.text
    form |= {"field_1": "status", "key_1": "", "op_1": "=", "value_1": "active"}
    counted = editor.client.post("/admin/segments/new", data=form | {"action": "count"})
    assert "<strong>1</strong> subscriber matches now" in counted.text
    assert "ann@example.org" in counted.text
    assert "cy@example.org" not in counted.text
    removed = editor.client.post("/admin/segments/new", data=form | {"action": "remove-1"})
    assert 'name="field_1"' not in removed.text
    assert 'value="Paris"' in removed.text
    saved = editor.client.post("/admin/segments/new", data=form | {"action": "save"})
    assert saved.status_code == 303
    with session_scope() as s:
        (segment,) = segments.list_segments(s)
        assert segment.rules == [
            {"field": "attributes.city", "op": "=", "value": "Paris"},
            {"field": "status", "op": "=", "value": "active"},
        ]
    shown = editor.client.get(saved.headers["location"])
    assert "Segment “Paris” created." in shown.text
    assert f"/admin/subscribers?segment={segment.id}" in shown.text
    assert f"/admin/campaigns/new?segment={segment.id}" in shown.text
    listing = editor.client.get("/admin/segments")
    assert "city = Paris and Status = active" in listing.text


def test_htmx_gets_only_the_block_it_swaps(sign_in_as) -> None:
    _people()
    editor = sign_in_as(Role.EDITOR)
    form = {"csrf_token": editor.csrf, "name": "x", "match": "any"} | _rules(
        field_0="attributes", key_0="age", op_0=">", value_0="30"
    )
    hx = {"HX-Request": "true"}
    rows = editor.client.post("/admin/segments/new", data=form | {"action": "add"}, headers=hx)
    assert rows.text.lstrip().startswith('<fieldset id="rules"')
    assert "<h1>" not in rows.text
    count = editor.client.post("/admin/segments/new", data=form | {"action": "count"}, headers=hx)
    assert count.text.lstrip().startswith('<section id="count"')
    assert "<strong>1</strong> subscriber matches" in count.text  # age 40 > 30, a number


def test_a_bad_rule_is_shown_next_to_its_field(sign_in_as) -> None:
    editor = sign_in_as(Role.EDITOR)
    form = {"csrf_token": editor.csrf, "name": "bad", "match": "all", "action": "save"}
    form |= _rules(field_0="opened", op_0="<", value_0="soon")
    page = editor.client.post("/admin/segments/new", data=form)
    assert page.status_code == 422
    assert "<title>Error:" in page.text
    assert 'href="#f-value_0"' in page.text
    assert 'id="f-value_0"' in page.text
    assert 'aria-invalid="true"' in page.text
    assert 'value="soon"' in page.text  # kept
    form |= _rules(field_0="status", op_0="contains", value_0="active")
    page = editor.client.post("/admin/segments/new", data=form)
    assert page.status_code == 422
    assert 'href="#f-op_0"' in page.text


def test_viewers_read_and_count_but_do_not_change(sign_in_as) -> None:
    _people()
    with session_scope() as s:
        segment = segments.create_segment(
            s, name="Lyon", rules=[{"field": "attributes.city", "op": "=", "value": "Lyon"}]
        )
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get(f"/admin/segments/{segment.id}")
    assert page.status_code == 200
    assert '<fieldset class="segment-fields" disabled>' in page.text
    assert "Save segment" not in page.text
    assert "bob@example.org" not in page.text
    counted = viewer.client.get(f"/admin/segments/{segment.id}?count=1")
    assert "bob@example.org" in counted.text


def test_delete_is_refused_while_a_campaign_uses_it(sign_in_as) -> None:
    with session_scope() as s:
        make_topic(s, "news")
        segment = segments.create_segment(s, name="All", rules=[])
        create_campaign(
            s, name="Winter sale", subject="Sale", body="Hi", topics=["news"], segment_id=segment.id
        )
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get(f"/admin/segments/{segment.id}/delete")
    assert "cannot be deleted yet" in page.text
    assert "Winter sale" in page.text
    refused = editor.client.post(
        f"/admin/segments/{segment.id}/delete", data={"csrf_token": editor.csrf}
    )
    assert refused.status_code == 409
    assert "Winter sale" in refused.text
    with session_scope() as s:
        other = segments.create_segment(s, name="Unused", rules=[])
    confirm = editor.client.get(f"/admin/segments/{other.id}/delete")
    assert "Delete Unused" in confirm.text
    done = editor.client.post(
        f"/admin/segments/{other.id}/delete", data={"csrf_token": editor.csrf}
    )
    assert done.status_code == 303
    assert "Segment “Unused” deleted." in editor.client.get("/admin/segments").text
