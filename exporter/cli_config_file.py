"""The configuration file ``wavespeed-export.toml``, read and checked (docs/profiles.md).

Found by ``--config FILE``, else ``WAVESPEED_EXPORT_CONFIG``, else ``./wavespeed-export.toml``.
Every value is checked once, on loading, by the very click parameter the option has (so the file
and the command line accept the same values); a literal key, an unknown key or a bad value is a
ConfigError (exit 2) naming the file and the key. Running the profiles it holds is
:mod:`exporter.cli_profiles`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from .books.database import DEFAULT_ACCOUNT
from .config import check_date_format
from .errors import ConfigError
from .extract.urls import check_base_url

CONFIG_NAME = "wavespeed-export.toml"
CONFIG_ENV = "WAVESPEED_EXPORT_CONFIG"
# "default" is the books' account of a run without a profile; "consolidated" is kept for the
# consolidated pack of several accounts (<out>/consolidated/)
RESERVED_NAMES = (DEFAULT_ACCOUNT, "consolidated")
_PROFILE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEY_COMMAND_TIMEOUT = 30.0  # seconds api_key_command may take

# key in the file -> the option's parameter name ([defaults] and [profiles.NAME] alike)
OPTION_KEYS = {
    "out": "out", "timezone": "tz_name", "accounts": "accounts", "mapping": "accounts", "formats": "formats",
    "granularity": "granularity", "lookback": "lookback", "date_format": "date_format", "iif_lists": "iif_lists",
    "strict": "strict", "reconcile": "no_reconcile", "balance_max_records": "balance_max_records", "api": "api",
    "page_size": "page_size", "concurrency": "concurrency", "retries": "retries", "backoff": "backoff",
    "max_wait": "max_wait", "timeout": "timeout", "lock_timeout": "lock_timeout",
}
DEFAULTS_ONLY = {"books": "books_file"}  # one books file holds every account
PROFILE_ONLY = {"topups": "topups"}  # the receipts of one account
INVERTED = {"no_reconcile"}  # `reconcile = false` is --no-reconcile
_RELATIVE_PATHS = {"out", "accounts", "books_file", "topups"}  # relative to the file's folder
# what a profile says about its account; the key itself never is in the file
KEY_SOURCES = ("api_key_env", "api_key_command", "sandbox")
# a literal key: a key of that name, or a value that looks like one
_KEYISH_NAME = re.compile(r"(api_?key|apikey|token|secret|password|bearer)$", re.IGNORECASE)
_KEYISH_VALUE = re.compile(r"(sk|ws|key|api)[-_][A-Za-z0-9_-]{12,}|[A-Za-z0-9_-]{32,}", re.IGNORECASE)
# options a profile decides itself: refused on the command line with --profile/--all-profiles
PROFILE_DECIDES = ("api_key", "base_url", "sandbox", "sandbox_api", "sandbox_as_of", "from_source")
# one account's figures: refused on the command line when several profiles run
ONE_ACCOUNT = ("opening_balance", "topups")


@dataclass(frozen=True)
class Profile:
    """One provider account: where its key comes from, its base URL and its overrides."""

    name: str
    values: dict[str, Any]  # parameter name -> value, converted
    key_env: str | None = None
    key_command: str | None = None
    sandbox: bool = False
    base_url: str | None = None

    def key_origin(self) -> str:
        if self.sandbox:
            return "the built-in sandbox's demo key"
        if self.key_env is not None:
            state = "set" if os.environ.get(self.key_env, "").strip() else "NOT SET"
            return f"environment variable {self.key_env} ({state})"
        return f"command: {self.key_command}"


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    defaults: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)


def find_config(given: Path | None) -> Path | None:
    """--config FILE, else WAVESPEED_EXPORT_CONFIG, else ./wavespeed-export.toml if there is one."""
    if given is not None:
        return given
    named = os.environ.get(CONFIG_ENV, "").strip()
    if named:
        if not Path(named).is_file():
            raise ConfigError(f"{CONFIG_ENV}={named}: no such configuration file")
        return Path(named)
    local = Path(CONFIG_NAME)
    return local if local.is_file() else None


def load_config(path: Path, reference: click.Command) -> ConfigFile:
    """The file read and every value checked with ``reference``'s parameters (the export command)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc})") from None
    _refuse_literal_keys(path, document, "")
    for key in document:
        if key not in ("defaults", "profiles"):
            raise ConfigError(f"{path}: unknown key {key!r} (the file holds [defaults] and [profiles.NAME] tables)")
    params = {p.name: p for p in reference.params if p.name}
    ctx = click.Context(reference)
    defaults = _table(path, document.get("defaults", {}), "defaults")
    values = _options(path, "defaults", defaults, {**OPTION_KEYS, **DEFAULTS_ONLY}, params, ctx)
    profiles_table = _table(path, document.get("profiles", {}), "profiles")
    profiles = {}
    for name, table in profiles_table.items():
        where = f"[profiles.{name}]"
        if not _PROFILE_NAME.fullmatch(name) or name in RESERVED_NAMES:
            raise ConfigError(f"{path}: {where}: a profile name is a letter then up to 39 letters, digits, - or _, "
                              f"and not {' or '.join(RESERVED_NAMES)} (it names the account's folder)")
        profiles[name] = _profile(path, name, _table(path, table, where), params, ctx)
    return ConfigFile(path, values, profiles)


def _table(path: Path, value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    return value


def _refuse_literal_keys(path: Path, table: dict[str, Any], where: str) -> None:
    """A key in the file is refused wherever it is: files get committed and shared."""
    for key, value in table.items():
        inner = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            _refuse_literal_keys(path, value, inner)
            continue
        profile = where.removeprefix("profiles.") if where.startswith("profiles.") else None
        named = f"profile {profile!r}" if profile else f"[{where or 'top level'}]"
        keyish = isinstance(value, str) and key != "api_key_command" and _KEYISH_VALUE.fullmatch(value.strip())
        if keyish and key == "api_key_env" and value == value.upper():
            keyish = None  # a long variable name (WAVESPEED_KEY_OF_OUR_LARGEST_CLIENT_2024), not a key
        literal = (_KEYISH_NAME.search(key) and key not in KEY_SOURCES) or keyish
        if literal:
            raise ConfigError(f"{path}: {named}: {key} holds what looks like an API key; keys never go in this file "
                              "(it gets committed and shared): name an environment variable with api_key_env, "
                              "or a command that prints the key with api_key_command")


def _options(path: Path, where: str, table: dict[str, Any], allowed: dict[str, str],
             params: dict[str, click.Parameter], ctx: click.Context, also: tuple[str, ...] = ()) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in table.items():
        name = allowed.get(key)
        if name is None:
            known = ", ".join(sorted([*allowed, *also]))
            raise ConfigError(f"{path}: [{where}] unknown key {key!r} (known: {known})")
        if name in values:
            raise ConfigError(f"{path}: [{where}] {key}: given twice (accounts and mapping are the same setting)")
        values[name] = _value(path, f"[{where}] {key}", raw, params[name], ctx)
    return values


def _value(path: Path, where: str, raw: Any, param: click.Parameter, ctx: click.Context) -> Any:
    """``raw`` converted by the option's own parameter type; ConfigError naming the file and key."""
    flag = isinstance(param, click.Option) and param.is_flag
    if flag != isinstance(raw, bool):
        raise ConfigError(f"{path}: {where}: expected {'true or false' if flag else 'a value, not ' + str(raw).lower()}")
    if param.name == "formats" and isinstance(raw, list):
        raw = ",".join(str(item) for item in raw)
    if isinstance(raw, (list, dict)):
        raise ConfigError(f"{path}: {where}: expected a single value")
    if param.name in INVERTED:
        raw = not raw
    if param.name in _RELATIVE_PATHS:
        raw = str(path.parent / Path(raw).expanduser())  # an absolute path stays itself
    try:
        value = param.type_cast_value(ctx, raw)
        if param.name == "tz_name":
            ZoneInfo(str(value))
        if param.name == "date_format":
            check_date_format(str(value))
    except click.BadParameter as exc:
        raise ConfigError(f"{path}: {where}: {exc.message}") from None
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: {where}: unknown IANA time zone {raw!r}") from None
    except ConfigError:
        raise ConfigError(f"{path}: {where}: {raw!r} does not write a whole date that reads back "
                          "(try %d/%m/%Y or %m/%d/%Y)") from None
    return value


def _profile(path: Path, name: str, table: dict[str, Any], params: dict[str, click.Parameter],
             ctx: click.Context) -> Profile:
    where = f"profiles.{name}"
    own = {key: table.pop(key) for key in (*KEY_SOURCES, "base_url") if key in table}
    values = _options(path, where, table, {**OPTION_KEYS, **PROFILE_ONLY}, params, ctx, (*KEY_SOURCES, "base_url"))
    sources = [key for key in KEY_SOURCES if key in own and own[key] is not False]
    if len(sources) != 1:
        raise ConfigError(f"{path}: [{where}] needs exactly one of api_key_env, api_key_command or sandbox = true "
                          f"(it has {', '.join(sources) or 'none'})")
    for key in sources:
        kind = bool if key == "sandbox" else str
        if not isinstance(own[key], kind) or (kind is str and not own[key].strip()):
            raise ConfigError(f"{path}: [{where}] {key}: expected {'true' if kind is bool else 'a non-empty string'}")
    env = own.get("api_key_env")
    if env is not None and not _ENV_NAME.fullmatch(env):
        raise ConfigError(f"{path}: profile {name!r}: api_key_env {env[:4]!r}... is not the name of an environment "
                          "variable (looks like a literal key? keys never go in this file)")
    base_url = own.get("base_url")
    if base_url is not None:
        if own.get("sandbox"):
            raise ConfigError(f"{path}: [{where}] base_url: a sandbox profile serves its own URL; drop it")
        try:
            base_url = check_base_url(str(base_url)) if isinstance(base_url, str) else None
        except ConfigError:
            base_url = None
        if base_url is None:
            raise ConfigError(f"{path}: [{where}] base_url: expected an https:// URL with a host, no user name or "
                              "password (plain http only to a loopback host)")
    return Profile(name, values, env, own.get("api_key_command"), bool(own.get("sandbox")), base_url)


# -- merging ------------------------------------------------------------------------------------
