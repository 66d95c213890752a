"""Named profiles: more than one tenant principal for one cloud, like `az login` accounts.

Why: `alto admin subscription create` hands out a new tenant's client id and secret, and before profiles nothing
let `alto` act as that tenant. A profile is a principal (client id, secret) and the subscription it works on. The
cloud it talks to (endpoint, token endpoint, CA) stays in ``credentials.json``, so the profiles live next to it,
in ``profiles.json`` of the same data dir: a profile always belongs to the server that issued its secret, and
another ``--data-dir`` is another cloud with profiles of its own. The file holds secrets, so it is written 0600,
like ``credentials.json``.

The profile in use is ``alto --profile NAME``, else ``$ALTO_PROFILE``, else the one ``alto account set`` chose
(``"active"`` in the file), else ``default``: the tenant of ``credentials.json``, which is never stored here.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROFILE_ENV = "ALTO_PROFILE"
DEFAULT_PROFILE = "default"
FILE_NAME = "profiles.json"
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_selected: str | None = None  # `alto --profile NAME`, set by the root command before any subcommand runs


class ProfileError(Exception):
    """A profile that cannot be used, in a sentence that says what to do."""


def select(name: str | None) -> None:
    """Remember ``alto --profile NAME`` for this process."""
    global _selected
    _selected = name


def profiles_path(credentials: Path) -> Path:
    return credentials.with_name(FILE_NAME)


def load(path: Path) -> dict[str, Any]:
    """The file's content, ``{"active": NAME|None, "profiles": {NAME: {...}}}``; empty when there is no file."""
    if not path.exists():
        return {"active": None, "profiles": {}}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
            raise ValueError("not an object with a 'profiles' object")
    except (OSError, ValueError) as exc:
        raise ProfileError(f"Cannot read {path}: {exc}. Fix or delete it, then run `alto login` again.") from exc
    data.setdefault("active", None)
    return data


def save(path: Path, data: dict[str, Any]) -> None:
    """Write the file 0600 whatever existed before, atomically (a crash leaves the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT keeps the mode of a leftover file
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def check_name(name: str) -> None:
    if name == DEFAULT_PROFILE:
        raise ProfileError(f"'{DEFAULT_PROFILE}' is the tenant of credentials.json; choose another profile name.")
    if not NAME_RULE.match(name):
        raise ProfileError(
            f"Invalid profile name '{name}': 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
        )


def active_name(data: dict[str, Any]) -> tuple[str, str]:
    """The profile in use and why it is: ``("teamb", "--profile")``, ``"ALTO_PROFILE"`` or ``"alto account set"``."""
    if _selected:
        return _selected, "--profile"
    env = os.environ.get(PROFILE_ENV)
    if env:
        return env, PROFILE_ENV
    active = data.get("active")
    if isinstance(active, str) and (active == DEFAULT_PROFILE or active in data["profiles"]):
        return active, "alto account set"
    return DEFAULT_PROFILE, "default"


@dataclass(frozen=True)
class Profile:
    name: str
    principal: dict[str, Any]  # clientId, clientSecret, subscriptionId (+ subscriptionName when known)
    source: Path  # the file that holds the secret: credentials.json or profiles.json

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_PROFILE


def all_profiles(credentials: dict[str, Any], credentials_file: Path) -> list[Profile]:
    path = profiles_path(credentials_file)
    stored = load(path)["profiles"]
    return [Profile(DEFAULT_PROFILE, credentials["tenant"], credentials_file)] + [
        Profile(name, principal, path) for name, principal in sorted(stored.items())
    ]


def resolve(credentials: dict[str, Any], credentials_file: Path, name: str | None = None) -> Profile:
    """The profile ``name`` (default: the one in use), or a :class:`ProfileError` naming the known ones."""
    if name is None:
        name, _ = active_name(load(profiles_path(credentials_file)))
    for profile in all_profiles(credentials, credentials_file):
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in all_profiles(credentials, credentials_file))
    raise ProfileError(
        f"No profile '{name}' in {profiles_path(credentials_file)} (known: {known}). "
        f"Create it with `alto login --profile {name} --client-id ID --client-secret SECRET`."
    )
