"""/preferences/{token}: the preference center."""

from fastapi import APIRouter

router = APIRouter()
