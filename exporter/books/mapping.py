"""The account mapping: which QuickBooks account (and class) each kind of record is booked to.

The mapping is a TOML file (``templates/accounts.toml`` is the commented default)::

    vendor = "WaveSpeedAI"
    postpaid = false
    [prepaid]
    account = "Prepaid Expenses:WaveSpeedAI Credits"
    type = "OCASSET"
    [usage]
    account = "AI API Usage"
    type = "EXP"
    [usage.models]
    "google/*" = { account = "AI API Usage:Video", class = "AI Models:Google" }
    [payment_methods]
    default = { account = "WaveSpeedAI Clearing", type = "BANK" }
    stripe = { account = "Company Visa", type = "CCARD" }
    [refunds]   ...   [suspense]   ...   [payable] (needed when postpaid = true)
    [[keys]]
    name = "prod-app"        # an API key's name, exact, or a prefix ending in "*"
    class = "Production"

A ``[[keys]]`` rule gives usage and refunded tasks of an API key a class; it wins over the class
of the model's rule (docs/booking.md, "Chargeback by API key"). The account stays the model's.

For Xero (docs/xero.md) an account may also carry ``code`` (its Xero account code) and
``xero_tax_rate`` (the tax rate name on its lines; the file's top-level ``xero_tax_rate``, or
"Tax Exempt", when absent).

This module is the model; :mod:`.mapping_toml` loads and checks the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_XERO_TAX_RATE = "Tax Exempt"

# IIF ACCNTTYPE keywords that a journal line may post to, and the Beancount root of each.
# NONPOSTING is a real keyword but cannot carry journal lines, so a mapping may not use it.
ACCOUNT_ROOTS = {
    "BANK": "Assets",
    "AR": "Assets",
    "OCASSET": "Assets",
    "OASSET": "Assets",
    "FIXASSET": "Assets",
    "CCARD": "Liabilities",
    "AP": "Liabilities",
    "OCLIAB": "Liabilities",
    "LTLIAB": "Liabilities",
    "EQUITY": "Equity",
    "INC": "Income",
    "EXINC": "Income",
    "EXP": "Expenses",
    "EXEXP": "Expenses",
    "COGS": "Expenses",
}


@dataclass(frozen=True)
class Account:
    """A QuickBooks account: full name (``Parent:Child``), IIF type keyword, optional description.

    ``code`` is the Xero account code (``""``: none given); ``xero_tax_rate`` the Xero tax rate name
    for this account's lines (``""``: the mapping's default).
    """

    name: str
    type: str
    description: str = ""
    code: str = ""
    xero_tax_rate: str = ""


@dataclass(frozen=True)
class ModelRule:
    """A rule of ``[usage.models]``: ``pattern`` is an exact model id or a prefix ending in ``*``.

    ``account``/``klass`` are ``""`` when the rule leaves them to a less specific rule.
    """

    pattern: str
    account: str = ""
    klass: str = ""

    @property
    def is_prefix(self) -> bool:
        return self.pattern.endswith("*")

    def matches(self, model: str) -> bool:
        if self.is_prefix:
            return model.startswith(self.pattern[:-1])
        return model == self.pattern


@dataclass(frozen=True)
class KeyRule:
    """A ``[[keys]]`` rule: ``pattern`` is an API key's exact name or a prefix ending in ``*``."""

    pattern: str
    klass: str

    @property
    def is_prefix(self) -> bool:
        return self.pattern.endswith("*")

    def matches(self, key_name: str) -> bool:
        if self.is_prefix:
            return key_name.startswith(self.pattern[:-1])
        return key_name == self.pattern


@dataclass(frozen=True)
class AccountMapping:
    """A loaded, validated mapping. All resolution methods return full QuickBooks account names."""

    source: Path
    vendor: str
    postpaid: bool
    prepaid: str
    payable: str  # "" when the file has no [payable] (allowed only while postpaid = false)
    usage: str
    usage_class: str
    rules: tuple[ModelRule, ...]  # most specific first: exact ids, then prefixes, longest first
    payment_methods: dict[str, str]  # lower-case method -> account name
    default_payment: str
    refunds: str
    suspense: str
    accounts: dict[str, Account] = field(repr=False)  # every declared account, by full name
    xero_tax_rate: str = DEFAULT_XERO_TAX_RATE  # tax rate name of a Xero line whose account names none
    keys: tuple[KeyRule, ...] = ()  # most specific first, like ``rules``

    @property
    def usage_side(self) -> str:
        """The account usage draws on: the prepaid credit, or the payable when postpaid."""
        return self.payable if self.postpaid else self.prepaid

    def expense_for(self, model: str) -> tuple[str, str, bool]:
        """(expense account, class, explicit) for a model id.

        Account and class are resolved separately, each from the most specific rule that sets it
        (exact id > longest matching prefix > ``[usage]``). ``explicit`` is False when no rule
        matches the model at all: it is "unmapped" and lands on the default expense account.
        """
        account = klass = ""
        explicit = False
        for rule in self.rules:
            if rule.matches(model):
                explicit = True
                account = account or rule.account
                klass = klass or rule.klass
                if account and klass:
                    break
        return account or self.usage, klass or self.usage_class, explicit

    def key_class(self, key_name: str) -> str:
        """The class of the most specific ``[[keys]]`` rule matching an API key's name; "" when none
        does (or the record names no key: a rule never matches the empty name)."""
        if key_name:
            for rule in self.keys:
                if rule.matches(key_name):
                    return rule.klass
        return ""

    def line_for(self, model: str, key_name: str) -> tuple[str, str, bool]:
        """(expense account, class, explicit) of usage of ``model`` run by the key ``key_name``: the
        model's account and class (:meth:`expense_for`), the key's class winning when a key rule matches."""
        account, klass, explicit = self.expense_for(model)
        return account, self.key_class(key_name) or klass, explicit

    def payment_account(self, method: str) -> str:
        """The account that paid for a top-up (or receives a refund), ``default`` when unknown."""
        return self.payment_methods.get(method.strip().lower(), self.default_payment)

    def account_type(self, name: str) -> str:
        """The IIF type keyword of a declared account; KeyError for a name the mapping lacks."""
        return self.accounts[name].type

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class the mapping can put on a line, sorted."""
        found = {self.usage_class, *(rule.klass for rule in self.rules), *(rule.klass for rule in self.keys)}
        return tuple(sorted(name for name in found if name))

    def postable_accounts(self) -> tuple[str, ...]:
        """Every account a journal line may post to, sorted (the payable only when postpaid)."""
        found = {
            self.prepaid, self.usage, self.default_payment, self.refunds, self.suspense,
            *self.payment_methods.values(), *(rule.account for rule in self.rules if rule.account),
        }
        if self.postpaid:
            found.add(self.payable)
        return tuple(sorted(found))

    def tax_rate(self, name: str) -> str:
        """The Xero tax rate name for a line on account ``name``."""
        return self.accounts[name].xero_tax_rate or self.xero_tax_rate

    def names(self) -> dict[str, str]:
        """Every name a book file may carry (accounts, classes, the vendor) -> what it is, for messages."""
        found = {name: "account" for name in self.accounts}
        found.update({name: "class" for name in self.classes})
        found[self.vendor] = "vendor"
        return found


__all__ = ["ACCOUNT_ROOTS", "DEFAULT_XERO_TAX_RATE", "Account", "AccountMapping", "KeyRule", "ModelRule"]
