"""Profiles run: one per provider account of the configuration file (docs/profiles.md).

:func:`runs` merges, for each profile asked for, command line > profile > defaults > built-in
default, and remembers where each value came from (``wavespeed-export config`` prints it);
:func:`each_profile` runs them one after another, each all-or-nothing. The file itself is read
and checked by :mod:`exporter.cli_config_file`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from .books.database import BOOKS_NAME, DEFAULT_ACCOUNT
from .cli_config_file import (
    CONFIG_ENV,
    CONFIG_NAME,
    INVERTED,
    KEY_COMMAND_TIMEOUT,
    ONE_ACCOUNT,
    OPTION_KEYS,
    PROFILE_DECIDES,
    PROFILE_ONLY,
    ConfigFile,
    Profile,
    find_config,
    load_config,
)
from .config import DEFAULT_BASE_URL
from .display import echo, json_text, visible
from .errors import ConfigError, ExportError, from_foreign

_GIVEN = {ParameterSource.COMMANDLINE: "command line", ParameterSource.ENVIRONMENT: "environment",
          ParameterSource.PROMPT: "command line"}


@dataclass(frozen=True)
class Run:
    """One account's run: the merged parameters and where each came from."""

    profile: Profile | None
    params: dict[str, Any]
    origins: dict[str, str]

    @property
    def name(self) -> str:
        return self.profile.name if self.profile else DEFAULT_ACCOUNT


def runs(params: dict[str, Any], reference: Callable[[], click.Command],
         given: frozenset[str] = frozenset()) -> tuple[ConfigFile | None, list[Run]]:
    """The runs this invocation asks for. Pops ``config_file``, ``profiles`` and ``all_profiles``
    from ``params``. Without a profile asked for: one run (the file's [defaults] apply, if any).
    ``given``: names given on the command line to a parent command (``books --out X check``)."""
    ctx = click.get_current_context()
    path = find_config(params.pop("config_file", None))
    names: tuple[str, ...] = tuple(dict.fromkeys(params.pop("profiles", None) or ()))
    every = bool(params.pop("all_profiles", False))
    config = load_config(path, reference()) if path is not None else None
    if not names and not every:
        return config, [_merge(ctx, params, config, None, given)]
    if config is None:
        raise ConfigError(f"--profile and --all-profiles need a configuration file: --config FILE, {CONFIG_ENV}, "
                          f"or {CONFIG_NAME} in the working directory")
    if names and every:
        raise ConfigError("--profile and --all-profiles: give one or the other")
    unknown = [n for n in names if n not in config.profiles]
    if unknown:
        raise ConfigError(f"{config.path}: no profile {', '.join(map(repr, unknown))} "
                          f"(profiles: {', '.join(config.profiles) or 'none'})")
    if every and not config.profiles:
        raise ConfigError(f"{config.path}: --all-profiles, but the file has no [profiles.NAME] table")
    decided = _given_flags(ctx, params, PROFILE_DECIDES)
    if decided:
        raise ConfigError(f"{decided}: each profile decides it in {config.path}; drop it, or run without --profile")
    chosen = names or tuple(config.profiles)
    one_account = _given_flags(ctx, params, ONE_ACCOUNT)
    if one_account and len(chosen) > 1:
        raise ConfigError(f"{one_account}: one account's figure, but {len(chosen)} profiles run; give it with "
                          "one --profile (topups: in the profile)")
    return config, [_merge(ctx, params, config, config.profiles[name], given) for name in chosen]


def _given_flags(ctx: click.Context, params: dict[str, Any], names: tuple[str, ...]) -> str:
    """The flags of ``names`` given on the command line, comma-separated ("" if none)."""
    flags = {p.name: max(p.opts, key=len) for p in ctx.command.params}
    return ", ".join(flags[n] for n in names if n in params and ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE)


def _merge(ctx: click.Context, params: dict[str, Any], config: ConfigFile | None, profile: Profile | None,
           given: frozenset[str] = frozenset()) -> Run:
    merged, origins = dict(params), {}
    for name in params:
        source = ParameterSource.COMMANDLINE if name in given else ctx.get_parameter_source(name)
        if source in _GIVEN and not (profile is not None and name in ("api_key", "base_url")):
            origins[name] = _GIVEN[source]
        elif profile is not None and name in profile.values:
            merged[name], origins[name] = profile.values[name], f"profile {profile.name}"
        elif config is not None and name in config.defaults:
            merged[name], origins[name] = config.defaults[name], "defaults"
        else:
            origins[name] = "built-in"  # what click gave it: the option's default
    if profile is not None:  # the key and URL come from the profile only, never from the environment
        merged["sandbox"] = profile.sandbox
        merged["base_url"] = profile.base_url or DEFAULT_BASE_URL
        origins["base_url"] = f"profile {profile.name}" if profile.base_url or profile.sandbox else "built-in"
        merged["api_key"] = None  # resolved when the profile runs (account_key)
    return Run(profile, merged, origins)


def account_key(profile: Profile) -> str:
    """The profile's key, from its environment variable or command; ConfigError naming the
    profile (never the key) when there is none."""
    if profile.sandbox:
        return ""
    if profile.key_env is not None:
        key = os.environ.get(profile.key_env, "").strip()
        if not key:
            raise ConfigError(f"the environment variable {profile.key_env} is not set")
        return key
    assert profile.key_command is not None
    try:
        done = subprocess.run(shlex.split(profile.key_command), check=False, capture_output=True, text=True,
                              timeout=KEY_COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        reason = "timed out" if isinstance(exc, subprocess.TimeoutExpired) else "could not be run"
        raise ConfigError(f"api_key_command {reason}") from None
    key = next(iter(done.stdout.splitlines()), "").strip()  # the first line: `pass show` prints more
    if done.returncode != 0 or not key:
        raise ConfigError(f"api_key_command exited with status {done.returncode}"
                          f"{'' if key else ' and printed no key'}")
    return key


def profile_params(run: Run) -> dict[str, Any]:
    """The run's parameters as one account's: its own folder ``<out>/<profile>`` for packs, the
    one books file ``<out>/books.sqlite`` shared by every account."""
    params = dict(run.params)
    if run.profile is None or "out" not in params:
        return params
    out = Path(params["out"])
    if "books_file" in params and params["books_file"] is None:
        params["books_file"] = out / BOOKS_NAME
    params["out"] = out / run.profile.name
    return params


@dataclass(frozen=True)
class Outcome:
    """One profile's result: exit code 0 and what the command returned, or the error's code and line."""

    profile: str
    exit_code: int
    value: Any = None
    error: str | None = None

    def shown(self) -> dict[str, Any]:
        """As ``--json`` shows it: the exit code and the result, or the error."""
        return {"exit_code": self.exit_code, **({"error": self.error} if self.exit_code else {"result": self.value})}


def each_profile(todo: list[Run], work: Callable[[Run], Any], *, quiet: bool = False, as_json: bool = False,
                 finish: tuple[str, Callable[[], Any]] | None = None) -> list[Outcome]:
    """``work`` for each profile, one after another. Each is all or nothing on its own: a failure
    is reported and the next profile runs. Ctrl-C stops them all. Then a line per profile; if
    any failed, an ExportError carrying the highest exit code among them, naming them.
    ``finish`` (name, step): run once every profile succeeded (the consolidated pack), its result
    or error reported under that name (``--json``: a key of the object)."""
    outcomes = []
    for run in todo:
        if not quiet and not as_json:
            echo(f"== profile {run.name} ==")
        outcomes.append(_attempt(run.name, partial(work, run)))
        if outcomes[-1].exit_code and not as_json:
            echo(f"error: profile {run.name}: {outcomes[-1].error}", err=True)
    failed = [o for o in outcomes if o.exit_code]
    if not as_json and (failed or not quiet):
        echo("profiles: " + ", ".join(f"{o.profile} " + (f"FAILED (exit {o.exit_code})" if o.exit_code else "ok")
                                      for o in outcomes), err=quiet)
    last = _attempt(*finish) if finish and not failed else None
    if as_json:
        echo(json_text({"profiles": [{"profile": o.profile, **o.shown()} for o in outcomes],
                        **({last.profile: last.shown()} if last else {})}))
    if failed:
        worst = max(o.exit_code for o in failed)
        error = ExportError(f"{len(failed)} of {len(outcomes)} profile(s) failed: "
                            + ", ".join(f"{o.profile} (exit {o.exit_code})" for o in failed)
                            + ("; the others are done" if len(failed) < len(outcomes) else ""))
        error.exit_code = worst
        raise error
    if last is not None and last.exit_code:
        error = ExportError(f"{last.profile}: {last.error}")
        error.exit_code = last.exit_code
        raise error
    return outcomes


def _attempt(name: str, step: Callable[[], Any]) -> Outcome:
    """``step``'s result, or its error as the CLI reads it; Ctrl-C and click's exits go through."""
    debug = bool(click.get_current_context().find_root().params.get("debug"))
    try:
        return Outcome(name, 0, step())
    except (click.exceptions.Exit, click.exceptions.Abort):
        raise
    except click.ClickException as exc:
        code, message = exc.exit_code, exc.format_message()
    except ExportError as exc:
        code, message = exc.exit_code, str(exc)
    except Exception as exc:  # a bug or a foreign error: read as the CLI reads it, then carry on
        if debug:
            raise
        error = from_foreign(exc)
        code, message = error.exit_code, str(error)
    return Outcome(name, code, error=" ".join(visible(message).split()))


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--config FILE."""
    return click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                        help=f"Configuration file (default: {CONFIG_ENV}, else ./{CONFIG_NAME} if there is one).",
                        metavar="FILE")(func)


def profile_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--config, --profile (repeatable) and --all-profiles."""
    options = [
        config_option,
        click.option("--profile", "profiles", multiple=True, metavar="NAME",
                     help="Run for this profile of the configuration file (repeatable)."),
        click.option("--all-profiles", is_flag=True, help="Run for every profile of the configuration file."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


__all__ = [
    "CONFIG_ENV",
    "CONFIG_NAME",
    "INVERTED",
    "OPTION_KEYS",
    "PROFILE_ONLY",
    "ConfigFile",
    "Outcome",
    "Profile",
    "Run",
    "account_key",
    "config_option",
    "each_profile",
    "find_config",
    "load_config",
    "profile_options",
    "profile_params",
    "runs",
]
