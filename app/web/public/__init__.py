"""Pages and endpoints for the public: sign-up, confirmation, unsubscribe, preferences."""

from fastapi import APIRouter

from app.web.public import health, signup

router = APIRouter()
router.include_router(health.router)
router.include_router(signup.router)
