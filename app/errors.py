"""Domain exceptions; imports nothing so every layer can raise them."""


class OctomailError(Exception):
    """Base class: every domain error carries a message safe to show to a user."""


class NotFound(OctomailError):
    pass


class Conflict(OctomailError):
    pass


class InvalidInput(OctomailError):
    pass


class InvalidCursor(OctomailError):
    """A paging cursor that is not one we handed out (400: the request is malformed)."""


class TokenInvalid(OctomailError):
    """Bad signature, wrong purpose or malformed token."""


class TokenExpired(TokenInvalid):
    pass


class LinkGone(TokenInvalid):
    """A genuine link whose person is gone (erased), or who is not the person it was made
    for: answered with the "gone" page (410), never with anyone's data."""


class Suppressed(OctomailError):
    """The address is on the suppression list: a marketer may not (re-)add it."""


class InvalidTransition(Conflict):
    """A campaign state change that the state machine does not allow."""


class ConfigurationError(OctomailError):
    """A setting needed for this action is missing or invalid."""


class RateLimited(OctomailError):
    pass


class Unauthenticated(OctomailError):
    """A caller that did not prove who it is: a provider webhook without a valid signature
    or credentials (401)."""


class Forbidden(OctomailError):
    """A caller who proved who it is but may not do this: a validly signed SNS message
    from a topic that is not ours (403)."""


class DatabaseUnavailable(ConfigurationError):
    """The configured database does not exist, cannot be reached or has no schema yet."""
