"""The words of the campaign footer (why you get this, unsubscribe, preferences) in each
recipient's language.

Only our own words: the marketer's content is sent as written. A campaign's footers are
translated once per language when it is prepared (the topics and the organisation are
the campaign's), and each message picks its reader's, so no message calls gettext. Layouts
use them as `{{ footer.reason }}`, `{{ footer.unsubscribe }}`, ... (docs/API.md).
"""

from __future__ import annotations

from app.i18n import DEFAULT, N_, SUPPORTED, gettext_for, supported

FOOTER_VARIABLE = "footer"

_REASON = N_("You receive this email because you subscribed to %(topics)s from %(org)s.")
_UNSUBSCRIBE = N_("Unsubscribe")
_PREFERENCES = N_("Manage your preferences")
_UNSUBSCRIBE_LABEL = N_("Unsubscribe:")
_PREFERENCES_LABEL = N_("Manage your preferences:")


def footer_words(lang: str, *, org_name: str, topics: list[str]) -> dict[str, str]:
    """The footer of one campaign in one language: link texts for the HTML part, labels
    before the bare links of the text part, and the reason (empty without topics)."""
    _ = gettext_for(lang)
    reason = _(_REASON) % {"topics": ", ".join(topics), "org": org_name} if topics else ""
    return {
        "lang": lang,
        "reason": reason,
        "unsubscribe": _(_UNSUBSCRIBE),
        "preferences": _(_PREFERENCES),
        "unsubscribe_label": _(_UNSUBSCRIBE_LABEL),
        "preferences_label": _(_PREFERENCES_LABEL),
    }


def campaign_footers(*, org_name: str, topics: list[str]) -> dict[str, dict[str, str]]:
    """Every supported language's footer of a campaign, by language code."""
    return {lang: footer_words(lang, org_name=org_name, topics=topics) for lang in SUPPORTED}


def reader_language(stored: str | None) -> str:
    """The language of a subscriber's mail: their stored one, else the default (English),
    as for the other mail they get."""
    return supported(stored) or DEFAULT
