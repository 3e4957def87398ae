"""/api/v1/subscribers (filled in by the foundation work)."""

from fastapi import APIRouter

router = APIRouter(prefix="/subscribers", tags=["subscribers"])
