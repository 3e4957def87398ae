"""Pages and endpoints for the public: sign-up, confirmation, unsubscribe, preferences."""

from fastapi import APIRouter

from app.web.public import (
    account,
    archive,
    email_optout,
    health,
    preferences,
    reports,
    signup,
    tracking,
    unsubscribe,
    webhooks,
)

router = APIRouter()
router.include_router(health.router)
router.include_router(tracking.router)
router.include_router(signup.router)
router.include_router(unsubscribe.router)
router.include_router(preferences.router)
router.include_router(email_optout.router)
router.include_router(webhooks.router)
router.include_router(account.router)
router.include_router(archive.router)
router.include_router(reports.router)
