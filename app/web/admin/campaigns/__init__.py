"""/admin/campaigns: the list, the editor, review and send, progress, and the recipients'
outcomes. One router per page group; handlers call app/campaigns, as app/web/api does."""

from __future__ import annotations

from fastapi import APIRouter

from app.web.admin.campaigns import editor, listing, outcomes, sending

router = APIRouter()
router.include_router(listing.router)
router.include_router(outcomes.router)  # /{id}/sends.csv before the editor's /{id}
router.include_router(sending.router)
router.include_router(editor.router)
