"""What an opt-out phrase means where it stands: asked for, or negated ("please do NOT
unsubscribe me", "ne me désabonnez pas", "bitte nicht abmelden", "no me den de baja"), and
whether it names the sender ("remove me") or leaves the object to an address written
nearby ("please unsubscribe my old work address x@..."). Pure matching on folded text.

Errs towards a person: a phrase is negated when a negation stands in its clause shortly
before it, and a message with any negated phrase goes to Review, never to an opt-out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from app.inbound.phrases import BARE_WORD, OPTOUT_ANY, OPTOUT_COMPILED, fold

# Where a clause ends: punctuation, a dash between spaces, or a word that starts a new
# thought ("..., just change my name", "je ne la lis plus donc désabonnez-moi").
_CLAUSE_BREAK = re.compile(
    r"[.!?;,:()\[\]\"\n]|\s[-\u2013\u2014]+\s|(?<!\w)(?:but|so|and|just|only|instead|then|"
    r"please|pls|thanks?|however|therefore|mais|donc|alors|et|juste|seulement|plutot|merci|"
    r"svp|cependant|aber|sondern|also|und|nur|bitte|danke|jedoch|sonst|pero|sino|y|solo|"
    r"entonces|gracias|favor)(?!\w)"
)
_WORDS = re.compile(r"[\w']+")
_NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "dont",
        "don't",
        "doesnt",
        "doesn't",
        "didnt",
        "didn't",
        "wont",
        "won't",
        "wouldnt",
        "wouldn't",
        "shouldnt",
        "shouldn't",
        "without",
        "neither",
        "nor",
        "ne",
        "pas",
        "jamais",
        "sans",
        "non",
        "aucun",
        "aucune",
        "nicht",
        "kein",
        "keine",
        "keinen",
        "keiner",
        "nie",
        "niemals",
        "ohne",
        "nunca",
        "jamas",
        "sin",
        "tampoco",
        "ni",
    }
)
# "no longer", "nicht mehr", "ne ... plus", "ya no": the wish to stop, not a negated request.
_NO_LONGER = frozenset({"longer", "anymore", "more", "mehr", "plus", "ya", "mas"})
# "not interested", "I never signed up", "I don't read it": the reason to leave, negated.
_REASONS = frozenset(
    {
        "interested",
        "interest",
        "relevant",
        "read",
        "reading",
        "signed",
        "subscribed",
        "subscribe",
        "asked",
        "requested",
        "opened",
        "wanted",
        "interesse",
        "lis",
        "inscrit",
        "abonne",
        "demande",
        "interessiert",
        "lese",
        "gelesen",
        "abonniert",
        "angemeldet",
        "bestellt",
        "interesa",
        "interesan",
        "leo",
        "suscrito",
        "suscribi",
        "pedi",
    }
)
# Spanish "no" negates the verb after it ("no me den de baja", "no quiero..."); English
# "no" before a noun ("no time", "no interest") does not.
_NO_NEGATES = frozenset(
    {
        "me",
        "te",
        "nos",
        "lo",
        "la",
        "se",
        "quiero",
        "deseo",
        "quiere",
        "desea",
        "queremos",
        "den",
        "des",
        "cancelen",
        "cancele",
        "borren",
        "eliminen",
        "quiten",
        "hace",
        "hagan",
        "es",
        "need",
        "necesito",
        "hay",
    }
)
# "I can't unsubscribe", "je n'arrive pas à me désabonner": the person wants out.
_INABILITY = frozenset(
    {
        "can",
        "could",
        "can't",
        "cant",
        "cannot",
        "couldn't",
        "couldnt",
        "unable",
        "able",
        "possible",
        "work",
        "works",
        "working",
        "find",
        "found",
        "manage",
        "managed",
        "seem",
        "seems",
        "arrive",
        "reussi",
        "pu",
        "peux",
        "peut",
        "pouvais",
        "trouve",
        "marche",
        "fonctionne",
        "kann",
        "konnte",
        "klappt",
        "funktioniert",
        "finde",
        "moglich",
        "puedo",
        "pude",
        "funciona",
        "encuentro",
        "consigo",
    }
)
# "unsubscribe link/button": a mention of the mechanism, never negated ("there is no
# unsubscribe link" is a complaint from someone who wants out).
_MECHANISM = re.compile(
    r"\s*-?\s*(?:link|links|button|page|url|lien|bouton|enlace|boton|"
    r"knopf|schaltflache)\b"
)
_SELF = frozenset({"me", "myself", "us", "ourselves", "moi", "nous", "mich", "mir", "uns", "nos"})
_SELF_SUFFIXED = re.compile(
    r"^(?:dar|den|dad|eliminar|eliminen|borrar|borren|quitar|quiten|"
    r"sacar|saquen|retirar|retiren)me$|^m'"
)
_WINDOW = 6


@dataclass
class Reading:
    """The opt-out phrases of one text and what they mean."""

    found: dict[str, str] | None = None  # the first phrase that asks (lang, pattern, match)
    negated: list[str] = field(default_factory=list)  # phrases a negation turns around
    names_sender: bool = False  # an asking phrase has a first-person object ("remove me")

    def merge(self, other: Reading) -> Reading:
        return Reading(
            found=self.found or other.found,
            negated=self.negated + other.negated,
            names_sender=self.names_sender or other.names_sender,
        )


@lru_cache(maxsize=1024)  # the same few phrases come back all day; callers copy the dict
def _describe(text: str) -> dict[str, str]:
    for lang, pattern, regex in OPTOUT_COMPILED:
        if regex.fullmatch(text):
            return {"lang": lang, "pattern": pattern, "match": text}
    return {"lang": "?", "pattern": "?", "match": text}


def _clause_before(folded: str, start: int) -> list[str]:
    head = folded[max(0, start - 200) : start]
    cut = 0
    for found in _CLAUSE_BREAK.finditer(head):
        cut = found.end()
    return _WORDS.findall(head[cut:])


def _clause_after(folded: str, end: int) -> list[str]:
    tail = folded[end : end + 80]
    found = _CLAUSE_BREAK.search(tail)
    return _WORDS.findall(tail[: found.start()] if found else tail)


def _is_negated(before: list[str], folded: str, end: int) -> bool:
    window = before[-_WINDOW:]
    if not window or _MECHANISM.match(folded, end):
        return False
    for index, word in enumerate(window):
        cue = word in _NEGATIONS or word.startswith("n'")
        following = window[index + 1 :]
        if not cue or (word == "no" and following and following[0] not in _NO_NEGATES):
            continue
        if set(following) & (_NO_LONGER | _REASONS) or set(window) & _INABILITY:
            continue
        return True
    return False


def _names_self(words: list[str]) -> bool:
    return any(w in _SELF or _SELF_SUFFIXED.match(w) for w in words)


def read_request(text: str) -> Reading:
    """Every opt-out phrase in `text`, each read in its clause."""
    folded = fold(text)
    reading = Reading()
    if not folded:
        return reading
    if len(folded) <= 40 and BARE_WORD.match(folded):
        reading.found = {"lang": "any", "pattern": "bare word", "match": folded}
        reading.names_sender = True
        return reading
    for match in OPTOUT_ANY.finditer(folded):
        before = _clause_before(folded, match.start())
        if _is_negated(before, folded, match.end()):
            reading.negated.append(match.group(0))
            continue
        if reading.found is None:
            reading.found = dict(_describe(match.group(0)))
        after = _clause_after(folded, match.end())
        if _names_self(_WORDS.findall(match.group(0)) + before[-1:] + after[:1]):
            reading.names_sender = True
    return reading
