"""/email-optout/{token}: confirm the removal of an address someone wrote in a request by
email. GET shows a page with a button and changes nothing (link scanners open links);
the button's POST acts. The signed, expiring token in the URL is the capability."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.inbound.confirm import confirm, pending_address
from app.mail.addresses import mask_email
from app.web.deps import SessionDep, request_evidence
from app.web.templating import render

router = APIRouter()
PRIVATE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}


@router.get("/email-optout/{token}", response_class=HTMLResponse)
def email_optout_page(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    _row, address = pending_address(session, token)
    response = render(
        request,
        "public/email_optout.html",
        {"done": False, "masked_email": mask_email(address), "action": request.url.path},
    )
    response.headers.update(PRIVATE_HEADERS)
    return response


@router.post("/email-optout/{token}", response_class=HTMLResponse)
def email_optout_confirm(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    address, _result = confirm(session, token, request_evidence(request, via="email-optout"))
    response = render(
        request, "public/email_optout.html", {"done": True, "masked_email": mask_email(address)}
    )
    response.headers.update(PRIVATE_HEADERS)
    return response
