"""The answer to a change: commit, then 303 with a message."""

from __future__ import annotations

from fastapi.responses import RedirectResponse
from sqlmodel import Session

from app.web.admin.render import redirect


def done(db: Session, url: str, flash: str) -> RedirectResponse:
    """Commit before answering: the request's session (a yield dependency) is committed only
    after the response is sent, so the page the browser loads at once could otherwise read
    the state from before the change (seen on PostgreSQL: "scheduled" showed as "draft")."""
    db.commit()
    return redirect(url, flash)
