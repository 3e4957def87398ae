"""Subscribers' own sign-in (issue 15): sign-in links, an optional password, sessions."""
