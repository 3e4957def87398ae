"""Public sign-up form and JSON endpoint, double opt-in confirmation."""

from fastapi import APIRouter

router = APIRouter()
