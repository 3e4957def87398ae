"""Benchmark: a campaign's report over 1,000,000 sends and 3,000,000 tracking events
(PostgreSQL), beside one `SELECT count(*)` over the events table in the same run.

Loads a throw-away database inside the server with generate_series: the people and one
campaign's sends (1% bounced at sending, 1% failed, 1% skipped) and their progress
counters, a million sign-up events
in the consent log with no campaign (what the partial index must skip), 2% of the people
opting out through the campaign (link, one-click, email, bounce, complaint; a bounce marks
its send bounced, as the app does), a thousand soft bounce reports from the mailbox and a
thousand from providers (half of them the same people; ten thousand more provider events
tied to no campaign), and the tracking events: every send opened once, half of them twice,
machine opens, clicks on five links by people who opened first, machine clicks, spread
over 48 hours. The rollups (`tracking_first`, `tracking_rollup`, `tracking_link`) are then
built from those events by SQL that follows app/tracking/record.py's rules (a person's
first open or click makes the unique count of its hour; machine events apart; a click is an
open, and here every clicker opened before clicking, so it adds no open) and the run checks
them: the summary's totals must equal the events counted by kind.

Then times, each over --runs (a fresh session or request each): the domain call
`campaign_report()`, the API `GET /api/v1/campaigns/{id}/report` (in-process ASGI, token
checked), and `SELECT count(*) FROM tracking_event` as the baseline. Target: the report
under 300 ms. Prints p50/p99 and the ratio report / count(*).
Run: `.venv/bin/python bench/reports.py [--sends 1000000] [--events 3000000] [--runs 20]`.
Needs PostgreSQL (OCTOMAIL_BENCH_PG_URL, default postgres@127.0.0.1:5432); drops its
database at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _pg import create_database, drop_database  # noqa: E402

TARGET_MS = 300.0
HOURS = 48
LINKS = 5

LOAD = [
    (
        "people",
        """INSERT INTO subscriber (email, name, attributes, status, source, created_at,
               updated_at, tracking_allowed, legacy_links)
           SELECT 'r' || i || '@bench.example', '', '{}', 'active', 'import',
                  now() - interval '30 days', now() - interval '30 days', true, false
           FROM generate_series(1, :sends) AS i""",
    ),
    (
        "sign-up events (no campaign)",
        """INSERT INTO consent_event (subscriber_id, email_hmac, action, channel, evidence, at)
           SELECT i, md5(i::text) || md5(i::text), 'subscribe', 'import', '{}',
                  now() - interval '30 days'
           FROM generate_series(1, :sends) AS i""",
    ),
    (
        "sends",
        """INSERT INTO send (campaign_id, subscriber_id, status, attempts, sent_at, updated_at)
           SELECT :campaign, i,
                  CASE i % 100 WHEN 0 THEN 'bounced' WHEN 1 THEN 'failed'
                       WHEN 2 THEN 'skipped' ELSE 'sent' END,
                  1, :t0 + (i % 3600) * interval '1 second',
                  :t0 + (i % 3600) * interval '1 second'
           FROM generate_series(1, :sends) AS i""",
    ),
    (
        "opt-outs through the campaign",
        """INSERT INTO consent_event (subscriber_id, email_hmac, action, channel, campaign_id,
               evidence, at)
           SELECT i, md5(i::text) || md5(i::text),
                  (ARRAY['unsubscribe', 'unsubscribe', 'unsubscribe', 'bounce',
                         'complaint'])[(i / 50) % 5 + 1],
                  (ARRAY['link', 'one_click', 'email', 'bounce', 'complaint'])[(i / 50) % 5 + 1],
                  :campaign, '{}', :t0 + (i % (:hours * 3600)) * interval '1 second'
           FROM generate_series(3, :sends, 50) AS i""",
    ),
    ("statistics for what follows", "ANALYZE send, consent_event"),
    (
        "bounces learnt after sending mark their sends (as app/sending/store.py does)",
        """UPDATE send SET status = 'bounced'
           FROM (SELECT DISTINCT subscriber_id FROM consent_event
                 WHERE campaign_id = :campaign AND action = 'bounce') AS later
           WHERE send.campaign_id = :campaign AND send.status = 'sent'
             AND send.subscriber_id = later.subscriber_id""",
    ),
    (
        "progress counters (what the workers and mark_bounced add up as they go)",
        """INSERT INTO campaign_counter (campaign_id, status, shard, n, minute, minute_n,
               previous_n)
           SELECT :campaign, status, 0, count(*), 0, 0, 0 FROM send
           WHERE campaign_id = :campaign GROUP BY status
           UNION ALL SELECT :campaign, 'total', 0, count(*), 0, 0, 0 FROM send
           WHERE campaign_id = :campaign""",
    ),
    (
        "soft bounce reports",
        """INSERT INTO inbound_message (source, uidvalidity, uid, verdict, action, status,
               reason, evidence, folder, created_at, campaign_id, address_hmac)
           SELECT 'bench', 1, i::text, 'soft_bounce', 'soft bounce 1/3', 'processed', '',
                  '{}', 'Processed', :t0, :campaign, md5(i::text)
           FROM generate_series(1, 1000) AS i""",
    ),
    (
        "provider soft bounces (half of them people the mailbox reported too) and events of "
        "no campaign",
        """INSERT INTO webhook_event (provider, event_id, kind, address_hmac, campaign_id,
               action, received_at)
           SELECT 'mailgun', 'bench-' || i, 'soft_bounce', md5(i::text),
                  CASE WHEN i <= 1500 THEN CAST(:campaign AS integer) END, 'soft bounce 1/3', :t0
           FROM generate_series(501, 11500) AS i""",
    ),
    (
        "links",
        """INSERT INTO tracking_link (campaign_id, url_hash, url, clicks_unique, clicks_total,
               clicks_machine, created_at)
           SELECT :campaign, md5(k::text) || md5(k::text), 'https://example.org/page-' || k,
                  0, 0, 0, :t0
           FROM generate_series(0, :links - 1) AS k""",
    ),
    (
        "tracking events",
        # In time order: people's opens (every send, half twice), machine opens, people's
        # clicks (after every open), machine clicks; link k = i % links.
        """INSERT INTO tracking_event (send_id, kind, at, meta)
           SELECT s.first_send + (i % :sends),
                  CASE WHEN i < :opens THEN 'open' WHEN i < :machine_opens THEN 'open.machine'
                       WHEN i < :clicks THEN 'click' ELSE 'click.machine' END,
                  :t0 + (i::float8 * :hours * 3600 / :events) * interval '1 second',
                  CASE WHEN i < :machine_opens THEN '{}'::jsonb
                       ELSE jsonb_build_object('link', s.first_link + (i % :links)) END
           FROM generate_series(0, :events - 1) AS i,
                (SELECT min(id) AS first_send FROM send) AS s0
                CROSS JOIN LATERAL (SELECT s0.first_send,
                    (SELECT min(id) FROM tracking_link) AS first_link) AS s""",
    ),
    (
        "firsts",
        """INSERT INTO tracking_first (send_id, kind, link_id)
           SELECT DISTINCT send_id, 'open', 0 FROM tracking_event WHERE kind = 'open'
           UNION ALL
           SELECT DISTINCT send_id, 'click', 0 FROM tracking_event WHERE kind = 'click'
           UNION ALL
           SELECT DISTINCT send_id, 'click', (meta->>'link')::int FROM tracking_event
           WHERE kind = 'click'""",
    ),
    (
        "hourly rollup",
        """INSERT INTO tracking_rollup (campaign_id, hour, opens_unique, opens_total,
               opens_machine, clicks_unique, clicks_total, clicks_machine)
           SELECT :campaign, h.hour,
                  coalesce(fo.n, 0), h.opens, h.opens_machine,
                  coalesce(fc.n, 0), h.clicks, h.clicks_machine
           FROM (SELECT date_trunc('hour', at) AS hour,
                        count(*) FILTER (WHERE kind = 'open') AS opens,
                        count(*) FILTER (WHERE kind = 'open.machine') AS opens_machine,
                        count(*) FILTER (WHERE kind = 'click') AS clicks,
                        count(*) FILTER (WHERE kind = 'click.machine') AS clicks_machine
                 FROM tracking_event GROUP BY 1) AS h
           LEFT JOIN (SELECT hour, count(*) AS n FROM (
                        SELECT date_trunc('hour', min(at)) AS hour FROM tracking_event
                        WHERE kind = 'open' GROUP BY send_id) AS f GROUP BY hour) AS fo
                  ON fo.hour = h.hour
           LEFT JOIN (SELECT hour, count(*) AS n FROM (
                        SELECT date_trunc('hour', min(at)) AS hour FROM tracking_event
                        WHERE kind = 'click' GROUP BY send_id) AS f GROUP BY hour) AS fc
                  ON fc.hour = h.hour""",
    ),
    (
        "link counts",
        """UPDATE tracking_link AS l SET
               clicks_unique = c.people, clicks_total = c.clicks, clicks_machine = c.machine
           FROM (SELECT (meta->>'link')::int AS link,
                        count(DISTINCT send_id) FILTER (WHERE kind = 'click') AS people,
                        count(*) FILTER (WHERE kind = 'click') AS clicks,
                        count(*) FILTER (WHERE kind = 'click.machine') AS machine
                 FROM tracking_event WHERE kind LIKE 'click%' GROUP BY 1) AS c
           WHERE l.id = c.link""",
    ),
]


def _params(sends: int, events: int, campaign: int, t0: object) -> dict[str, object]:
    opens = min(events, sends * 3 // 2)
    machine_opens = opens + events // 10
    clicks = machine_opens + (events - machine_opens) * 3 // 4
    return {
        "sends": sends,
        "events": events,
        "campaign": campaign,
        "t0": t0,
        "hours": HOURS,
        "links": LINKS,
        "opens": opens,
        "machine_opens": machine_opens,
        "clicks": clicks,
    }


def _campaign(engine) -> int:
    from sqlmodel import Session

    from app.models import Campaign, CampaignStatus, utcnow

    with Session(engine) as session:
        campaign = Campaign(
            name="Bench news",
            subject="News",
            status=CampaignStatus.DONE,
            started_at=utcnow(),
            finished_at=utcnow(),
        )
        session.add(campaign)
        session.commit()
        return int(campaign.id or 0)


def load(engine, sends: int, events: int) -> int:
    import sqlalchemy as sa

    from app.models import utcnow

    campaign = _campaign(engine)
    params = _params(sends, events, campaign, utcnow().replace(minute=0, second=0, microsecond=0))
    for name, sql in LOAD:
        started = time.perf_counter()
        with engine.begin() as conn:
            statement = sa.text(sql)
            used = {k: v for k, v in params.items() if f":{k}" in sql}
            conn.execute(statement, used)
        print(f"  loaded {name} in {time.perf_counter() - started:.1f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        started = time.perf_counter()
        conn.execute(sa.text("VACUUM ANALYZE"))
        print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)
    return campaign


def check(engine, campaign: int) -> None:
    """The rollups agree with the events (the summary reads only the rollups)."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from app.tracking.summary import tracking_summary

    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, count(*) FROM tracking_event GROUP BY 1"))
        by_kind = {str(kind): int(n) for kind, n in rows.all()}
        people = conn.execute(
            sa.text(
                "SELECT count(DISTINCT send_id) FILTER (WHERE kind = 'open'),"
                " count(DISTINCT send_id) FILTER (WHERE kind = 'click') FROM tracking_event"
            )
        ).one()
    with Session(engine) as session:
        s = tracking_summary(session, campaign)
    got = (s.opens_total, s.opens_machine, s.clicks_total, s.clicks_machine)
    want = tuple(by_kind.get(k, 0) for k in ("open", "open.machine", "click", "click.machine"))
    assert got == want, f"rollups {got} != events {want}"
    assert (s.opens_unique, s.clicks_unique) == tuple(people), (s, people)
    assert sum(k.total for k in s.links) == s.clicks_total
    print(f"  rollups agree with the events: {dict(sorted(by_kind.items()))}")


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm: plans, caches, the ORM's compiled statements
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def breakdown(engine, campaign: int, runs: int) -> dict[str, list[float]]:
    """Each query of the report alone (the same private functions it calls)."""
    from sqlmodel import Session

    from app.campaigns.service import get_campaign, progress
    from app.reports import campaign as c
    from app.tracking.summary import tracking_summary

    parts = {
        "progress counters": lambda db: progress(db, get_campaign(db, campaign)),
        "opt-outs (one read, counted)": lambda db: c._opt_outs(db, campaign),
        "soft bounces": lambda db: c._soft_bounces(db, campaign),
        "tracking_summary (rollups)": lambda db: tracking_summary(db, campaign),
    }
    out = {}
    for label, query in parts.items():

        def once(query=query) -> object:
            with Session(engine) as db:
                return query(db)

        out[label] = timed(once, runs)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    name, url = create_database()
    os.environ.update(
        OCTOMAIL_DATABASE_URL=url,
        OCTOMAIL_SECRET_KEYS="bench-secret-key-0123456789abcdef",
        OCTOMAIL_SUPPRESSION_PEPPER="bench-pepper-0123456789abcdef",
        OCTOMAIL_EMBEDDED_WORKER="false",
        OCTOMAIL_EMBEDDED_POLLER="false",
        OCTOMAIL_EMBEDDED_SCHEDULER="false",
        OCTOMAIL_SMTP_URLS="smtp://127.0.0.1:9",
    )
    try:
        run(url, args)
    finally:
        from app.db import get_engine

        get_engine().dispose()
        drop_database(name)


def run(url: str, args: argparse.Namespace) -> None:
    import sqlalchemy as sa
    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from app.db import get_engine, session_scope
    from app.main import create_app
    from app.migrate import upgrade
    from app.models import Role
    from app.reports.campaign import campaign_report
    from app.users import create_token, create_user

    engine = get_engine()
    upgrade(engine)
    print(f"PostgreSQL, {args.sends:,} sends, {args.events:,} tracking events")
    campaign = load(engine, args.sends, args.events)
    check(engine, campaign)
    with session_scope() as s:
        user = create_user(s, email="bench@example.org", password="x" * 12, role=Role.VIEWER)
        token = create_token(s, user=user, name="bench")

    def domain() -> object:
        with Session(engine) as session:
            return campaign_report(session, campaign)

    def count() -> object:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM tracking_event")).scalar_one()

    report = domain()
    parts = breakdown(engine, campaign, args.runs)
    with TestClient(create_app()) as client:
        headers = {"Authorization": f"Bearer {token}"}
        url_path = f"/api/v1/campaigns/{campaign}/report"
        answer = client.get(url_path, headers=headers)
        assert answer.status_code == 200, answer.text

        def api() -> object:
            return client.get(url_path, headers=headers)

        results = {
            "report (domain call)": timed(domain, args.runs),
            "report (API, in-process)": timed(api, args.runs),
            "SELECT count(*) FROM tracking_event": timed(count, max(3, args.runs // 4)),
        }
    body = answer.json()
    print(
        f"  report: sent {body['sent']:,}, delivered {body['delivered']:,}, bounced "
        f"{body['bounced']:,} (soft {body['bounces']['soft']:,}), unsubscribed "
        f"{body['unsubscribed']:,}, complained {body['complained']:,}, opens "
        f"{body['opens']['unique']:,}/{body['opens']['total']:,} (+{body['opens']['machine']:,}"
        f" machine), clicks {body['clicks']['unique']:,}/{body['clicks']['total']:,}, "
        f"{len(body['timeline'])} hours"
    )
    assert getattr(report, "recipients", None) == args.sends
    with engine.connect() as conn:
        by_status = dict(
            conn.execute(sa.text("SELECT status, count(*) FROM send GROUP BY status")).all()
        )
    from_rows = (by_status["sent"] + by_status["bounced"], by_status["bounced"])
    assert (body["sent"], body["bounced"]) == from_rows, (body, by_status)
    print(f"  the counters agree with the send rows: {dict(sorted(by_status.items()))}")
    for label, values in results.items():
        print(f"{label:38s} p50 {p(values, 0.5):8.1f} ms   p99 {p(values, 0.99):8.1f} ms")
    for label, values in parts.items():
        print(f"  of which {label:29s} p50 {p(values, 0.5):8.1f} ms")
    base = p(results["SELECT count(*) FROM tracking_event"], 0.5)
    for label in ("report (domain call)", "report (API, in-process)"):
        mid = p(results[label], 0.5)
        verdict = "OK" if p(results[label], 0.99) < TARGET_MS else "OVER"
        print(
            f"ratio {label} / count(*): {mid / base:.3f}"
            f"  (target p99 < {TARGET_MS:.0f} ms: {verdict})"
        )
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores, shared machine)")


if __name__ == "__main__":
    main()
