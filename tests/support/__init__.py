"""Helpers shared by the tests (plain functions and classes; fixtures live in conftest.py).

Import them by their full name, `from tests.support.campaigns import make_topic`: one
package, no `sys.path` edits, no helper module named `test_*.py`.

- `net`: free ports and waiting for a listener.
- `wait`: `wait_until(predicate, timeout)`, for asserting that something happens.
- `migrations`: throw-away databases and a step-by-step Alembic migrator.
- `subscribers`, `campaigns`, `unsubscribe`, `tracking`: builders and readers of rows;
  `campaigns.send_news` sends a campaign through an SmtpSink as the API starts it.
- `smtp_sink`: a controllable aiosmtpd server; `dovecot`: a throw-away Dovecot IMAP server.
- `inbound`: the info mailbox as IMAP or Maildir; `inbound_cases`: the fixture mails and
  what each must lead to.
"""
