"""Credentials out of everything Replenish logs or prints: MLflow params and tags, console lines, errors."""

from __future__ import annotations

import re

REDACTED = "***"
# Words that make a setting, tag or query parameter a credential as a whole ("api_key", "auth_string").
SECRET_WORDS = {"password", "passwd", "pwd", "secret", "token", "key", "apikey", "auth", "credential", "credentials"}
# The password in scheme://user:password@host; up to the last "@" before the host, as an unencoded "@" may sit in it.
URI_PASSWORD = re.compile(
    r"(?P<kept>\b[a-z][a-z0-9+.\-]*:/+[^/\s:@]*:)[^/\s]*(?=@[^@/\s]*(?:[/?#\s]|$))", re.IGNORECASE
)
QUERY_PARAMETER = re.compile(r"(?P<kept>[?&;](?P<name>[^=&;#\s]+)=)[^&;#\s]*")


def names_a_secret(name: str) -> bool:
    words = re.split(r"[^a-z0-9]+", name.lower())
    return any(word in SECRET_WORDS or word.endswith(("password", "secret", "token")) for word in words)


def redacted(name: str, value: str) -> str:
    """``value`` of the setting or tag ``name`` as it may be logged: the whole value when the name says it is
    a secret, else with URI passwords and secret query parameters (?password=, &access_token=) masked."""
    if names_a_secret(name):
        return REDACTED
    value = URI_PASSWORD.sub(rf"\g<kept>{REDACTED}", value)
    return QUERY_PARAMETER.sub(
        lambda match: f"{match['kept']}{REDACTED}" if names_a_secret(match["name"]) else match[0], value
    )


def redacted_url(url: str) -> str:
    """A URL as it may be shown: its password and secret query parameters masked."""
    return redacted("url", url)
