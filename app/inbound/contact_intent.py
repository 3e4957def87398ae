"""A request to change one's own address or name, read from what the sender wrote (issue
15): English, French, German and Spanish, on the text left once quotes, reply headers,
signatures and forwarded footers are cut (app/inbound/text.py), as for opt-outs. Pure.

It errs towards a person: a request with no new address, several candidate addresses, a
negation ("please don't change my address"), or a question besides the request comes back
`unclear`, with what could be read as the proposal, for Review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.inbound.phrases import fold

_MAIL = r"(?:e-?mail|e-?mail address|mail address|address|mailbox)"
_MAIL_FR = r"(?:adresse(?: e-?mail| mail| electronique)?|e-?mail|mail|courriel)"
_MAIL_DE = r"(?:e-?mail-?adresse|e-?mail|mailadresse|adresse)"
_MAIL_ES = r"(?:direccion(?: de correo(?: electronico)?| de e-?mail| electronica)?|correo(?: electronico)?|e-?mail)"  # noqa: E501 - a phrase reads best on one line
_GAP = r"[^.!?]{0,40}?"

# On folded text (lower case, no accents, spaces collapsed): a change of address.
ADDRESS_PHRASES: list[tuple[str, str]] = [
    (
        "en",
        rf"\b(?:change|update|replace|switch|correct|amend)\b{_GAP}\b(?:my|our)\b[^.!?]{{0,20}}?\b{_MAIL}\b",
    ),
    ("en", rf"\b(?:my|our) new {_MAIL}\b"),
    ("en", rf"\bnew {_MAIL} (?:is|will be)\b"),
    (
        "en",
        rf"\b(?:my|our) {_MAIL} (?:has changed|changed|is changing|will change|is now|will be)\b",
    ),
    ("en", rf"\bi (?:have|got|now have) a new {_MAIL}\b"),
    (
        "en",
        r"\b(?:send|forward|mail) (?:it|them|the newsletters?|your (?:e-?mails|newsletters?|mailings?)|future (?:e-?mails|newsletters?|issues))\b[^.!?]{0,30}\b(?:to|at) (?:my new|this)\b",  # noqa: E501 - a phrase reads best on one line
    ),
    (
        "fr",
        rf"\b(?:changer|modifier|mettre a jour|remplacer|changez|modifiez|mettez a jour|remplacez|corriger|corrigez)\b{_GAP}\b(?:mon|ma|notre)\b[^.!?]{{0,12}}?\b{_MAIL_FR}\b",  # noqa: E501 - a phrase reads best on one line
    ),
    ("fr", r"\b(?:ma|notre) nouvelle adresse\b"),
    ("fr", r"\bmon nouvel? (?:e-?mail|mail|courriel)\b"),
    (
        "fr",
        rf"\b(?:mon|ma) {_MAIL_FR}\b[^.!?]{{0,20}}?\b(?:a change|change|est desormais|est maintenant|sera desormais|sera)\b",  # noqa: E501 - a phrase reads best on one line
    ),
    ("fr", r"\bnouvelle adresse (?:e-?mail|mail|electronique|courriel)\b"),
    ("de", rf"\bmeine neue {_MAIL_DE}\b"),
    (
        "de",
        rf"\bmeine {_MAIL_DE} (?:hat sich geandert|hat sich verandert|ist jetzt|ist nun|lautet jetzt|lautet nun|lautet ab sofort|andert sich)\b",  # noqa: E501 - a phrase reads best on one line
    ),
    (
        "de",
        rf"\b(?:andern|aktualisieren|ersetzen|korrigieren)\b{_GAP}\bmeine\b[^.!?]{{0,12}}?\b{_MAIL_DE}\b",
    ),
    (
        "de",
        rf"\bmeine\b[^.!?]{{0,12}}?\b{_MAIL_DE}\b[^.!?]{{0,40}}?\b(?:andern|aktualisieren|ersetzen|korrigieren)\b",
    ),
    ("de", rf"\b(?:ich habe eine|habe eine|unter meiner) neue[nr]? {_MAIL_DE}\b"),
    (
        "es",
        rf"\b(?:cambiar|actualizar|modificar|cambien|cambie|actualicen|actualice|modifiquen|modifique|corregir)\b{_GAP}\bmi\b[^.!?]{{0,12}}?\b{_MAIL_ES}\b",
    ),
    ("es", rf"\bmi nuev[oa] {_MAIL_ES}\b"),
    ("es", rf"\bmi {_MAIL_ES}\b[^.!?]{{0,20}}?\b(?:ha cambiado|cambio|es ahora|ahora es|sera)\b"),
    ("es", r"\bnueva direccion (?:de correo|de e-?mail|electronica)\b"),
    ("es", rf"\btengo (?:una nueva|un nuevo|nueva|nuevo) {_MAIL_ES}\b"),
]

# On the text as written (case-insensitive, accents allowed): a new name, captured.
_NAME = r"(?P<name>[^\W\d_][^\n.,;:!?()<>\"@]{0,80})"
_A = "[aáàâä]"
_E = "[eéèêë]"
NAME_PHRASES: list[tuple[str, str]] = [
    ("en", rf"\bmy (?:new )?name is now\s+{_NAME}"),
    ("en", rf"\bmy new name is\s+{_NAME}"),
    ("en", rf"\b(?:change|update|correct|amend)\s+my name\s+(?:to|into)\s+{_NAME}"),
    ("en", rf"\bi (?:have )?changed my name to\s+{_NAME}"),
    ("en", rf"\bi am now called\s+{_NAME}"),
    ("en", rf"\bi(?:'m| am) now\s+(?:known as|called)\s+{_NAME}"),
    ("fr", rf"\bmon nom est (?:d{_E}sormais|maintenant)\s+{_NAME}"),
    ("fr", rf"\bmon nouveau nom est\s+{_NAME}"),
    (
        "fr",
        rf"\b(?:changer|modifier|changez|modifiez|remplacer|remplacez)\s+mon nom\s+(?:en|par|pour)\s+{_NAME}",  # noqa: E501 - a phrase reads best on one line
    ),
    ("fr", rf"\bje m'?\s?appelle (?:d{_E}sormais|maintenant)\s+{_NAME}"),
    ("fr", rf"\bj'?\s?ai chang{_E} de nom\s*(?:,|:)?\s*(?:je m'?\s?appelle|c'est)?\s*{_NAME}"),
    ("de", rf"\bmein name (?:ist|lautet) (?:jetzt|nun|ab sofort)\s+{_NAME}"),
    ("de", rf"\bmein neuer name (?:ist|lautet)\s+{_NAME}"),
    ("de", rf"\b{_A}ndern sie (?:bitte )?meinen namen (?:bitte )?(?:in|auf|zu)\s+{_NAME}"),
    ("de", rf"\bmeinen namen (?:bitte )?(?:in|auf|zu)\s+{_NAME}"),
    ("de", r"\bich hei(?:ß|ss)e (?:jetzt|nun|ab sofort)\s+" + _NAME),
    ("es", rf"\bmi nombre (?:es|ser{_A}) (?:ahora|desde ahora)\s+{_NAME}"),
    ("es", rf"\bahora mi nombre es\s+{_NAME}"),
    ("es", rf"\bmi nuevo nombre es\s+{_NAME}"),
    (
        "es",
        rf"\b(?:cambiar|cambien|cambie|actualizar|actualicen|modificar|modifiquen)\s+mi nombre\s+(?:a|por|en)\s+{_NAME}",  # noqa: E501 - a phrase reads best on one line
    ),
    ("es", rf"\bahora me llamo\s+{_NAME}"),
]

_ADDRESS_RES = [(lang, re.compile(p)) for lang, p in ADDRESS_PHRASES]
_NAME_RES = [(lang, re.compile(p, re.IGNORECASE)) for lang, p in NAME_PHRASES]
# A cheap screen before the phrases: one of these words somewhere in the text.
_SCREEN = re.compile(
    r"adress|address|e-?mail|mail|correo|direccion|courriel|name|nom|nombre|heisse|heiße|llamo|appelle"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NEGATED = re.compile(
    r"\b(?:not|don't|dont|do not|never|no|ne|pas|nicht|kein|keine|no|nunca)\b[^.!?]{0,15}$"
)
# Trailing words that are the sentence's verb or politeness, not the name.
_NAME_TAIL = re.compile(
    r"\s+(?:andern|ändern|aktualisieren|bitte|please|thanks?|thank you|merci|svp|s'il vous pla[iî]t|"  # noqa: E501 - a phrase reads best on one line
    r"danke|gracias|por favor|from now on|desde ahora|dor[eé]navant|d[eé]sormais)\s*$",
    re.IGNORECASE,
)


@dataclass
class UpdateReading:
    lang: str
    matched: list[str] = field(default_factory=list)
    proposal: dict[str, str] = field(default_factory=dict)
    unclear: str = ""  # why a person must look, "" when the request is clear


def may_ask(text: str) -> bool:
    return bool(_SCREEN.search(text.lower()))


_CONJUNCTION = re.compile(
    r"\s+(?:and|et|und|y|but|mais|aber|pero|because|car|weil|porque)\s+", re.I
)


def _clean_name(raw: str) -> str:
    name = _CONJUNCTION.split(raw, maxsplit=1)[0].strip().strip("\"'“”„«» ")
    for _ in range(3):
        name = _NAME_TAIL.sub("", name).strip()
    words = name.split()
    return " ".join(words[:6]) if 0 < len(words) <= 6 else ""


def _address_match(folded: str) -> tuple[str, re.Match[str]] | None:
    for lang, regex in _ADDRESS_RES:
        match = regex.search(folded)
        if match:
            return lang, match
    return None


def _name_match(text: str) -> tuple[str, re.Match[str]] | None:
    for lang, regex in _NAME_RES:
        match = regex.search(text)
        if match:
            return lang, match
    return None


# A question that is itself the request: "Could you send it there from now on?"
_REQUEST_QUESTION = re.compile(
    r"^(?:(?:could|can|would|will) you|(?:pourriez|pouvez|pourrais|peux)[- ]vous|"
    r"(?:konnten|konnen|wurden) sie|(?:podrian|pueden|podria|puede|podrias|puedes))\b.*\b"
    r"(?:send|use|update|change|switch|envoyer|utiliser|mettre|changer|modifier|senden|"
    r"schicken|verwenden|nutzen|andern|aktualisieren|enviar|usar|utilizar|cambiar|actualizar)"
)


def _questions_besides(text: str, phrases: list[str]) -> bool:
    """A question in a sentence other than the request's own ("... to x@y. When is the
    next issue?"). A request asked as a question ("Could you change my address?") is not."""
    for sentence in _SENTENCE_END.split(text):
        if sentence.rstrip().endswith("?"):
            folded = fold(sentence)
            if not any(p in folded for p in phrases) and not _REQUEST_QUESTION.search(folded):
                return True
    return False


def read_update(written: str, *, exclude: set[str]) -> UpdateReading | None:
    """The change the sender asks for, or None when they ask for none. `exclude`: the
    sender's own and our addresses (never a proposal)."""
    if not may_ask(written):
        return None
    folded = fold(written)
    address = _address_match(folded)
    name = _name_match(written)
    if address is None and name is None:
        return None
    first = address if address is not None else name
    assert first is not None
    reading = UpdateReading(lang=first[0])
    if address is not None:
        reading.matched.append(address[1].group(0))
        before = folded[: address[1].start()]
        if _NEGATED.search(before[-40:]):
            reading.unclear = "the change of address is negated"
        candidates = [a.lower().strip(".") for a in dict.fromkeys(_EMAIL.findall(written))]
        candidates = [a for a in candidates if a not in exclude]
        if len(candidates) == 1:
            reading.proposal["email"] = candidates[0]
        elif not candidates:
            reading.unclear = reading.unclear or "a change of address without a new address"
        else:
            reading.unclear = reading.unclear or "several addresses written"
    if name is not None:
        reading.matched.append(fold(name[1].group(0)[: name[1].start("name") - name[1].start()]))
        cleaned = _clean_name(name[1].group("name"))
        if cleaned:
            reading.proposal["name"] = cleaned
        else:
            reading.unclear = reading.unclear or "a change of name without a readable name"
    if not reading.unclear and _questions_besides(written, reading.matched):
        reading.unclear = "a question besides the change"
    return reading
