"""/api/v1: JSON API, bearer tokens on every route (see tests/web/test_api_auth.py)."""

from fastapi import APIRouter

from app.web.api import (
    campaigns,
    inbound,
    preflight,
    reports,
    segments,
    subscribers,
    tokens,
    topics,
    users,
)
from app.web.api.responses import COMMON

router = APIRouter(prefix="/api/v1", responses=COMMON)
router.include_router(topics.router)
router.include_router(subscribers.router)
router.include_router(segments.router)
router.include_router(campaigns.router)
router.include_router(preflight.router)
router.include_router(reports.router)
router.include_router(inbound.router)
router.include_router(users.router)
router.include_router(tokens.router)
