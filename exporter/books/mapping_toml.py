"""Loading the account mapping from TOML (``templates/accounts.toml`` is the commented default).

Everything is checked when the file is loaded, so a bad file stops the export before anything is
fetched (:class:`~exporter.errors.ConfigError`, exit 2, naming the file and the dotted key).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .mapping import ACCOUNT_ROOTS, DEFAULT_XERO_TAX_RATE, Account, AccountMapping, KeyRule, ModelRule


def _default_accounts_path() -> Path:
    """templates/accounts.toml of the checkout, or the copy a regular install puts in share/."""
    checkout = Path(__file__).resolve().parents[2] / "templates" / "accounts.toml"
    installed = Path(sys.prefix) / "share" / "wavespeed-export" / "accounts.toml"
    return checkout if checkout.exists() or not installed.exists() else installed


DEFAULT_ACCOUNTS_PATH = _default_accounts_path()

_ASSET_TYPES = ("OCASSET", "OASSET", "BANK")
_PAYABLE_TYPES = ("AP", "OCLIAB", "LTLIAB")

# QuickBooks Desktop field limits, the qbXML SDK's taken as IIF's (docs/booking.md, "IIF": field limits)
MAX_LEVEL = 31  # account / class name, each ":" level
MAX_FULL_NAME = 159  # full "A:B:C" account or class name
MAX_VENDOR = 41  # vendor name
MAX_DESCRIPTION = 200  # account description
# a spreadsheet would run the cell as a formula (docs/booking.md, "CSV and spreadsheet safety")
_LEADING_TRIGGERS = ("=", "+", "-", "@")
MAX_XERO_CODE = 30  # Xero account code: its screens take 10, older organisations have longer (docs/xero.md)
MAX_XERO_TAX_RATE = 50  # Xero tax rate name (docs/xero.md)
_XERO_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

_TOP_KEYS = {
    "vendor", "postpaid", "prepaid", "payable", "usage", "payment_methods", "refunds", "suspense", "xero_tax_rate",
    "keys",
}
_ACCOUNT_KEYS = {"account", "type", "description", "code", "xero_tax_rate"}
_USAGE_KEYS = _ACCOUNT_KEYS | {"class", "models"}
_RULE_KEYS = _ACCOUNT_KEYS | {"class"}
_KEY_RULE_KEYS = {"name", "class"}


def load_mapping(path: Path | None = None) -> AccountMapping:
    """Read and validate a mapping file; ``None`` reads the default template."""
    path = DEFAULT_ACCOUNTS_PATH if path is None else Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the account mapping: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _Loader(path).load(data)


class _Loader:
    """Walks the parsed TOML; every error names the file and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.accounts: dict[str, Account] = {}
        self.seen_at: dict[str, str] = {}

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def load(self, data: dict[str, Any]) -> AccountMapping:
        self.check_keys(data, _TOP_KEYS, "")
        for required in ("vendor", "prepaid", "usage", "payment_methods", "refunds", "suspense"):
            if required not in data:
                raise self.fail(required, "missing")
        vendor = self.vendor(data["vendor"])
        tax_rate = self.tax_rate(data.get("xero_tax_rate", DEFAULT_XERO_TAX_RATE), "xero_tax_rate")
        postpaid = data.get("postpaid", False)
        if not isinstance(postpaid, bool):
            raise self.fail("postpaid", f"must be true or false, got {_describe(postpaid)}")

        prepaid = self.account(data["prepaid"], "prepaid", allowed=_ASSET_TYPES)
        payable = ""
        if "payable" in data:
            payable = self.account(data["payable"], "payable", allowed=_PAYABLE_TYPES)
        elif postpaid:
            raise self.fail("payable", "missing (needed because postpaid = true)")

        usage_table = self.table(data["usage"], "usage")
        self.check_keys(usage_table, _USAGE_KEYS, "usage")
        usage = self.account(usage_table, "usage", check_keys=False)
        usage_class = self.klass(usage_table.get("class", ""), "usage.class")
        rules = self.rules(usage_table.get("models", {}), self.accounts[usage].type)
        keys = self.key_rules(data.get("keys", []))

        methods_table = self.table(data["payment_methods"], "payment_methods")
        if "default" not in methods_table:
            raise self.fail("payment_methods.default", "missing")
        methods: dict[str, str] = {}
        for method, value in methods_table.items():
            key = f"payment_methods.{_key(method)}"
            normalised = method.strip().lower()
            if not normalised:
                raise self.fail(key, "a payment method name may not be empty")
            if normalised in methods:
                raise self.fail(key, "the same payment method (ignoring case) is listed twice")
            methods[normalised] = self.account(value, key)
        default_payment = methods.pop("default")

        refunds = self.account(data["refunds"], "refunds")
        suspense = self.account(data["suspense"], "suspense")
        self.check_parents()
        # the credit balance (and the payable) must be told apart from what they are booked against
        others = {
            "usage": usage, "refunds": refunds, "suspense": suspense, "payment_methods.default": default_payment,
            **{f"payment_methods.{_key(m)}": a for m, a in methods.items()},
            **{f"usage.models.{_key(r.pattern)}": r.account for r in rules if r.account},
        }
        for side, name in (("prepaid", prepaid), ("payable", payable)):
            for key, other in others.items():
                if other == name:
                    raise self.fail(f"{key}.account", f"{name!r} is already the {side} account")
            self.check_own_code(side, name)
        return AccountMapping(
            source=self.path,
            vendor=vendor,
            postpaid=postpaid,
            prepaid=prepaid,
            payable=payable,
            usage=usage,
            usage_class=usage_class,
            rules=rules,
            payment_methods=methods,
            default_payment=default_payment,
            refunds=refunds,
            suspense=suspense,
            accounts=dict(self.accounts),
            xero_tax_rate=tax_rate,
            keys=keys,
        )

    # -- pieces ------------------------------------------------------------------------------

    def check_keys(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                dotted = f"{where}.{_key(key)}" if where else _key(key)
                raise self.fail(dotted, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, got {_describe(value)}")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {_describe(value)}")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise self.fail(key, "control characters (tab, newline, ...) are not allowed")
        return value

    def vendor(self, value: Any) -> str:
        name = self.text(value, "vendor").strip()
        if not name:
            raise self.fail("vendor", "may not be empty")
        if len(name) > MAX_VENDOR or '"' in name or ":" in name or name.startswith(_LEADING_TRIGGERS):
            raise self.fail("vendor", f"must be at most {MAX_VENDOR} characters, without '\"' or ':', not starting with = + - @")
        return name

    def account(
        self,
        value: Any,
        key: str,
        *,
        allowed: tuple[str, ...] | None = None,
        default_type: str | None = None,
        check_keys: bool = True,
    ) -> str:
        """Register ``{account, type, description}`` and return the account's full name."""
        table = self.table(value, key)
        if check_keys:
            self.check_keys(table, _ACCOUNT_KEYS, key)
        if "account" not in table:
            raise self.fail(f"{key}.account", "missing")
        name = self.full_name(table["account"], f"{key}.account", "account")
        known = self.accounts.get(name)
        if "type" in table:
            kind = self.text(table["type"], f"{key}.type").strip().upper()
            if kind not in ACCOUNT_ROOTS:
                raise self.fail(f"{key}.type", f"unknown account type {kind!r} (use one of {', '.join(ACCOUNT_ROOTS)})")
        elif known is not None:
            kind = known.type
        elif default_type is not None:
            kind = default_type
        else:
            raise self.fail(f"{key}.type", "missing")
        if allowed is not None and kind not in allowed:
            raise self.fail(f"{key}.type", f"{kind} is not allowed here (use {' or '.join(allowed)})")
        description = self.text(table.get("description", ""), f"{key}.description").strip()
        if len(description) > MAX_DESCRIPTION:
            raise self.fail(f"{key}.description", f"longer than {MAX_DESCRIPTION} characters")
        code = self.code(table["code"], f"{key}.code") if "code" in table else ""
        tax_rate = self.tax_rate(table["xero_tax_rate"], f"{key}.xero_tax_rate") if "xero_tax_rate" in table else ""
        if known is not None:
            if known.type != kind:
                raise self.fail(
                    f"{key}.type",
                    f"account {name!r} is {known.type} at {self.seen_at[name]} but {kind} here",
                )
            for field, mine, theirs in (("code", code, known.code), ("xero_tax_rate", tax_rate, known.xero_tax_rate)):
                if mine and theirs and mine != theirs:
                    raise self.fail(f"{key}.{field}", f"account {name!r} has {field} {theirs!r} at {self.seen_at[name]} but {mine!r} here")
            description = known.description or description
            code, tax_rate = code or known.code, tax_rate or known.xero_tax_rate
        else:
            self.seen_at[name] = key
        self.accounts[name] = Account(name, kind, description, code, tax_rate)
        return name

    def code(self, value: Any, key: str) -> str:
        """A Xero account code: letters, digits, '.', '_' or '-', starting with a letter or digit."""
        if isinstance(value, int) and not isinstance(value, bool):
            raise self.fail(key, f'write the account code as a string: code = "{value}"')
        code = self.text(value, key).strip()
        if not code or len(code) > MAX_XERO_CODE or not _XERO_CODE.match(code):
            raise self.fail(key, f"a Xero account code is 1-{MAX_XERO_CODE} letters, digits, '.', '_' or '-', "
                                 f"starting with a letter or digit; got {code!r}")
        return code

    def tax_rate(self, value: Any, key: str) -> str:
        """A Xero tax rate name, spelled as in the organisation's tax settings."""
        name = self.text(value, key).strip()
        if not name or len(name) > MAX_XERO_TAX_RATE or name.startswith(_LEADING_TRIGGERS):
            raise self.fail(key, f"a Xero tax rate name is 1-{MAX_XERO_TAX_RATE} characters, not starting with "
                                 f"= + - @; got {name!r}")
        return name

    def check_own_code(self, side: str, name: str) -> None:
        """The credit balance (or payable) needs a Xero code of its own, or its lines would net out."""
        code = self.accounts[name].code if name else ""
        for other, account in self.accounts.items():
            if code and other != name and account.code == code:
                raise self.fail(f"{self.seen_at[other]}.code", f"{code!r} is already the code of the {side} account {name!r}")

    def full_name(self, value: Any, key: str, what: str) -> str:
        """A QuickBooks ``Parent:Child`` name: levels non-empty, at most 31 chars, no '"'."""
        name = self.text(value, key).strip()
        if not name:
            raise self.fail(key, f"the {what} name may not be empty")
        if '"' in name:
            raise self.fail(key, f"the {what} name {name!r} contains '\"'")
        if len(name) > MAX_FULL_NAME:
            raise self.fail(key, f"the {what} name is longer than {MAX_FULL_NAME} characters")
        for level in name.split(":"):
            if not level.strip():
                raise self.fail(key, f"the {what} name {name!r} has an empty level (check the ':')")
            if level != level.strip():
                raise self.fail(key, f"level {level!r} of {name!r} starts or ends with a space")
            if len(level) > MAX_LEVEL:
                raise self.fail(key, f"level {level!r} is longer than {MAX_LEVEL} characters")
            if level.startswith(_LEADING_TRIGGERS):
                raise self.fail(key, f"level {level!r} starts with {level[0]!r} (a spreadsheet formula)")
        return name

    def klass(self, value: Any, key: str) -> str:
        if isinstance(value, str) and not value.strip():
            return ""
        return self.full_name(value, key, "class")

    def rules(self, value: Any, usage_type: str) -> tuple[ModelRule, ...]:
        table = self.table(value, "usage.models")
        rules = []
        for pattern, rule_value in table.items():
            key = f"usage.models.{_key(pattern)}"
            if not pattern.strip() or "*" in pattern[:-1]:
                raise self.fail(key, "a rule is an exact model id or a prefix ending in '*'")
            rule_table = self.table(rule_value, key)
            self.check_keys(rule_table, _RULE_KEYS, key)
            account = ""
            if "account" in rule_table:
                account = self.account(rule_table, key, default_type=usage_type, check_keys=False)
            elif set(rule_table) & (_ACCOUNT_KEYS - {"account"}):
                raise self.fail(f"{key}.account", "missing (type, description, code and xero_tax_rate describe an account)")
            klass = self.klass(rule_table.get("class", ""), f"{key}.class")
            if not account and not klass:
                raise self.fail(key, "a rule must set 'account', 'class' or both")
            rules.append(ModelRule(pattern, account, klass))
        # exact ids first, then prefixes from the longest down: the first match is the most specific
        rules.sort(key=lambda rule: (rule.is_prefix, -len(rule.pattern), rule.pattern))
        return tuple(rules)

    def key_rules(self, value: Any) -> tuple[KeyRule, ...]:
        """``[[keys]]``: each ``{name, class}``; the name an API key's exact name or a prefix ending
        in '*' (docs/booking.md, "Chargeback by API key")."""
        if not isinstance(value, list):
            raise self.fail("keys", f"must be an array of tables ([[keys]]), got {_describe(value)}")
        rules: dict[str, KeyRule] = {}
        for index, item in enumerate(value):
            key = f"keys[{index}]"
            table = self.table(item, key)
            self.check_keys(table, _KEY_RULE_KEYS, key)
            for required in ("name", "class"):
                if required not in table:
                    raise self.fail(f"{key}.{required}", "missing")
            pattern = self.text(table["name"], f"{key}.name")
            if not pattern.strip() or "*" in pattern[:-1]:
                raise self.fail(f"{key}.name", "an API key's exact name, or a prefix ending in '*'")
            if pattern in rules:
                raise self.fail(f"{key}.name", f"{pattern!r} is listed twice")
            klass = self.klass(table["class"], f"{key}.class")
            if not klass:
                raise self.fail(f"{key}.class", "may not be empty")
            rules[pattern] = KeyRule(pattern, klass)
        # exact names first, then prefixes from the longest down: the first match is the most specific
        return tuple(sorted(rules.values(), key=lambda rule: (rule.is_prefix, -len(rule.pattern), rule.pattern)))

    def check_parents(self) -> None:
        """QuickBooks keeps a sub-account in its parent's type; catch a clash before the import does."""
        # a parent level's type: its own when mapped, else that of its first child (IIF lists do the same)
        level_types = {name: (account.type, name) for name, account in self.accounts.items()}
        for name in sorted(self.accounts):
            account = self.accounts[name]
            levels = name.split(":")
            for depth in range(1, len(levels)):
                parent = ":".join(levels[:depth])
                kind, by = level_types.setdefault(parent, (account.type, name))
                if kind != account.type:
                    raise self.fail(
                        f"{self.seen_at[name]}.type",
                        f"{name!r} is {account.type} but its parent {parent!r} is {kind} (from {by!r}); "
                        "a QuickBooks sub-account has its parent's type",
                    )


def _key(name: str) -> str:
    """A TOML key as the user would write it in a dotted path."""
    bare = name.replace("-", "").replace("_", "").isalnum() and name.isascii()
    return name if bare else f'"{name}"'


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__



__all__ = ["DEFAULT_ACCOUNTS_PATH", "load_mapping"]
