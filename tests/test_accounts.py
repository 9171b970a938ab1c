"""The account mapping: precedence of model rules, payment methods, and what a bad file says."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.books.mapping_toml import DEFAULT_ACCOUNTS_PATH, load_mapping as load_accounts
from exporter.errors import ConfigError

SAMPLE = Path(__file__).parent / "golden" / "accounts_sample.toml"

MINIMAL = """
vendor = "WaveSpeedAI"
[prepaid]
account = "Prepaid Expenses:WaveSpeedAI Credits"
type = "OCASSET"
[usage]
account = "AI API Usage"
type = "EXP"
[payment_methods]
default = { account = "Stripe Clearing", type = "BANK" }
[refunds]
account = "AI API Usage"
type = "EXP"
[suspense]
account = "Uncategorized Asset"
type = "OCASSET"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_template_loads_and_maps_nothing_explicitly():
    mapping = load_accounts(None)
    assert mapping.source == DEFAULT_ACCOUNTS_PATH
    assert mapping.prepaid == "Prepaid Expenses:WaveSpeedAI Credits"
    assert mapping.account_type(mapping.prepaid) == "OCASSET"
    assert mapping.vendor == "WaveSpeedAI" and mapping.postpaid is False
    assert mapping.expense_for("wavespeed-ai/flux-dev") == ("AI API Usage", "", False)
    assert mapping.usage_side == mapping.prepaid


@pytest.mark.parametrize(
    "model, expected",
    [
        ("google/veo3", ("Video Generation", "AI Models:Google Video", True)),  # exact account, prefix class
        ("google/veo2", ("AI API Usage:Google", "AI Models:Google Video", True)),  # longest prefix class
        ("google/imagen", ("AI API Usage:Google", "AI Models:Google", True)),  # shorter prefix
        ("model-a", ("AI API Usage", "AI Models:model-a", True)),  # exact rule setting only a class
        ("model-a2", ("AI API Usage", "", False)),  # exact ids are not prefixes
        ("googl", ("AI API Usage", "", False)),
        ("", ("AI API Usage", "", False)),
    ],
)
def test_model_precedence_exact_then_longest_prefix_then_default(model, expected):
    assert load_accounts(SAMPLE).expense_for(model) == expected


def test_default_class_applies_to_unmatched_models(tmp_path):
    text = MINIMAL.replace('type = "EXP"\n[payment', 'type = "EXP"\nclass = "AI Models:Other"\n[payment', 1)
    mapping = load_accounts(write(tmp_path, text))
    assert mapping.expense_for("new/model") == ("AI API Usage", "AI Models:Other", False)


def test_payment_methods_ignore_case_and_fall_back_to_default():
    mapping = load_accounts(SAMPLE)
    assert mapping.payment_account("card") == "Company Visa"
    assert mapping.payment_account(" PayPal ") == "PayPal"
    assert mapping.payment_account("crypto") == "Stripe Clearing"
    assert mapping.payment_account("") == "Stripe Clearing"
    assert mapping.account_type("Company Visa") == "CCARD"


def test_postpaid_books_usage_against_the_payable(tmp_path):
    text = MINIMAL.replace('vendor = "WaveSpeedAI"', 'vendor = "WaveSpeedAI"\npostpaid = true')
    text += '[payable]\naccount = "Accounts Payable"\ntype = "AP"\n'
    mapping = load_accounts(write(tmp_path, text))
    assert mapping.usage_side == "Accounts Payable"
    assert mapping.account_type("Accounts Payable") == "AP"


def test_a_rule_account_without_type_takes_the_usage_type(tmp_path):
    text = MINIMAL + '[usage.models]\n"x/*" = { account = "Image Generation" }\n'
    mapping = load_accounts(write(tmp_path, text))
    assert mapping.expense_for("x/y") == ("Image Generation", "", True)
    assert mapping.account_type("Image Generation") == "EXP"


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda t: t + "broken = \n", "line"),  # TOML syntax error: the file and line are named
        (lambda t: t + "colour = 1\n", "colour"),
        (lambda t: t.replace('[usage]\n', '[usage]\nmodles = 1\n'), "usage.modles"),
        (lambda t: t.replace('type = "OCASSET"', 'type = "ASSET"', 1), "prepaid.type"),
        (lambda t: t.replace('vendor = "WaveSpeedAI"', 'vendor = "WaveSpeedAI"\npostpaid = "yes"'), "postpaid"),
        (lambda t: t.replace('vendor = "WaveSpeedAI"', "vendor = 3"), "vendor"),
        (lambda t: t.replace('"AI API Usage"', '"AI \\"API\\" Usage"', 1), "usage.account"),
        (lambda t: t.replace('"AI API Usage"', '"AI::Usage"', 1), "usage.account"),
        (lambda t: t.replace('"AI API Usage"', '"AI:"', 1), "usage.account"),
        (lambda t: t.replace('"AI API Usage"', '"' + "U" * 32 + '"', 1), "usage.account"),
        (lambda t: t.replace('"AI API Usage"', '"=HYPERLINK()"', 1), "usage.account"),
        (lambda t: t + '[usage.models]\n"a" = { class = "Models:' + "c" * 32 + '" }\n', 'usage.models.a.class'),
        (lambda t: t + '[usage.models]\n"a*b" = { class = "X" }\n', 'usage.models."a*b"'),
        (lambda t: t + '[usage.models]\n"a" = { }\n', "usage.models.a"),
        (lambda t: t + '[usage.models]\n"a" = { klass = "X" }\n', "usage.models.a.klass"),
        (lambda t: t.replace("[suspense]\naccount", "[suspense]\nacount"), "suspense.acount"),
        (lambda t: t.replace('[refunds]\naccount = "AI API Usage"\ntype = "EXP"', '[refunds]\naccount = "AI API Usage"\ntype = "EXEXP"'), "refunds.type"),
        (lambda t: t.replace('default = { account = "Stripe Clearing", type = "BANK" }', 'stripe = { account = "Stripe Clearing", type = "BANK" }'), "payment_methods.default"),
        (lambda t: t.replace('account = "Uncategorized Asset"', 'account = "Prepaid Expenses:WaveSpeedAI Credits"'), "suspense.account"),
        (lambda t: t.replace('type = "EXP"\n[payment', 'type = "EXP"\n[usage.models]\n"a" = { account = "AI API Usage:Cards", type = "CCARD" }\n[payment', 1), 'usage.models.a.type'),
        (lambda t: t.replace('vendor = "WaveSpeedAI"', 'vendor = "WaveSpeedAI"\npostpaid = true'), "payable"),
        (lambda t: t.replace("[suspense]", "[suspense_account]"), "suspense_account"),
    ],
)
def test_a_bad_mapping_is_a_config_error_naming_the_file_and_key(tmp_path, change, key):
    path = write(tmp_path, change(MINIMAL))
    with pytest.raises(ConfigError) as caught:
        load_accounts(path)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert str(path) in message and key in message, message
    assert "\n" not in message


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_accounts(tmp_path / "nope.toml")


def test_the_template_stays_valid_when_its_examples_are_uncommented(tmp_path):
    # the commented examples in the template must be valid TOML rules once a user enables them
    lines = DEFAULT_ACCOUNTS_PATH.read_text(encoding="utf-8").splitlines()
    enabled = [line[2:] if line.startswith('# "') or line.startswith("# stripe") or line.startswith("# paypal")
               or line.startswith("# card") else line for line in lines]
    mapping = load_accounts(write(tmp_path, "\n".join(enabled)))
    assert mapping.expense_for("google/veo3") == ("AI API Usage:Video", "AI Models:Google", True)
    assert mapping.expense_for("wavespeed-ai/flux-dev")[1] == "AI Models:FLUX"
    assert mapping.payment_account("stripe") == "Company Visa"


# -- Xero: account codes and tax rate names ------------------------------------------------------

XERO_TEMPLATE = Path(__file__).parents[1] / "templates" / "accounts_xero.toml"


def test_xero_codes_and_tax_rates_load_with_defaults_and_overrides(tmp_path):
    text = MINIMAL.replace('type = "OCASSET"\n', 'type = "OCASSET"\ncode = "620"\nxero_tax_rate = "No VAT"\n', 1)
    text = text.replace('[refunds]\naccount = "AI API Usage"\ntype = "EXP"', '[refunds]\naccount = "AI API Usage"\ntype = "EXP"\ncode = "400"')
    mapping = load_accounts(write(tmp_path, text))
    assert mapping.xero_tax_rate == ""  # no built-in rate: regions name their zero rate differently
    assert mapping.accounts["Prepaid Expenses:WaveSpeedAI Credits"].code == "620"
    assert mapping.tax_rate("Prepaid Expenses:WaveSpeedAI Credits") == "No VAT"
    # a code given where an account is named again applies to the account everywhere
    assert mapping.accounts["AI API Usage"].code == "400" and mapping.tax_rate("AI API Usage") == ""
    assert mapping.accounts["Stripe Clearing"].code == ""
    top = load_accounts(write(tmp_path, 'xero_tax_rate = "BAS Excluded"\n' + text))
    assert top.tax_rate("AI API Usage") == "BAS Excluded" and top.tax_rate(top.prepaid) == "No VAT"


def test_the_xero_template_has_a_code_for_every_postable_account():
    mapping = load_accounts(XERO_TEMPLATE)
    assert mapping.postable_accounts()
    assert all(mapping.accounts[name].code for name in mapping.postable_accounts())
    assert all(":" in klass for klass in mapping.classes)
    assert len({mapping.accounts[name].code for name in mapping.postable_accounts()}) == len(mapping.postable_accounts())


def test_postable_accounts_leave_out_an_unused_payable(tmp_path):
    text = MINIMAL + '[payable]\naccount = "Accounts Payable"\ntype = "AP"\n'
    prepaid = load_accounts(write(tmp_path, text))
    assert "Accounts Payable" not in prepaid.postable_accounts()
    postpaid = load_accounts(write(tmp_path, text.replace('vendor = "WaveSpeedAI"', 'vendor = "WaveSpeedAI"\npostpaid = true')))
    assert "Accounts Payable" in postpaid.postable_accounts()


@pytest.mark.parametrize(
    "change, key, words",
    [
        (lambda t: t.replace('type = "OCASSET"\n', 'type = "OCASSET"\ncode = 620\n', 1), "prepaid.code", 'code = "620"'),
        (lambda t: t.replace('type = "OCASSET"\n', 'type = "OCASSET"\ncode = "1234567890123456789012345678901"\n', 1), "prepaid.code", "1-30"),
        (lambda t: t.replace('type = "OCASSET"\n', 'type = "OCASSET"\ncode = "=1+2"\n', 1), "prepaid.code", "'=1+2'"),
        (lambda t: t.replace('type = "OCASSET"\n', 'type = "OCASSET"\ncode = ""\n', 1), "prepaid.code", "1-30"),
        (lambda t: t.replace('type = "OCASSET"\n', 'type = "OCASSET"\nxero_tax_rate = ""\n', 1), "prepaid.xero_tax_rate", "tax rate"),
        (lambda t: 'xero_tax_rate = "=cmd"\n' + t, "xero_tax_rate", "tax rate"),
        (lambda t: 'xero_tax_rate = 0\n' + t, "xero_tax_rate", "string"),
        # the same account with two different codes
        (lambda t: t.replace('[usage]\naccount = "AI API Usage"\ntype = "EXP"', '[usage]\naccount = "AI API Usage"\ntype = "EXP"\ncode = "400"')
         .replace('[refunds]\naccount = "AI API Usage"\ntype = "EXP"', '[refunds]\naccount = "AI API Usage"\ntype = "EXP"\ncode = "401"'),
         "refunds.code", "'400'"),
        # the prepaid credit's code used by another account: its lines would cancel out in Xero
        (lambda t: t.replace('type = "OCASSET"\n', 'type = "OCASSET"\ncode = "620"\n', 1)
         .replace('[suspense]\naccount = "Uncategorized Asset"\ntype = "OCASSET"', '[suspense]\naccount = "Uncategorized Asset"\ntype = "OCASSET"\ncode = "620"'),
         "suspense.code", "prepaid"),
        (lambda t: t + '[usage.models]\n"a" = { code = "401" }\n', "usage.models.a.account", "missing"),
    ],
)
def test_a_bad_xero_field_is_a_config_error_naming_the_key(tmp_path, change, key, words):
    path = write(tmp_path, change(MINIMAL))
    with pytest.raises(ConfigError) as caught:
        load_accounts(path)
    message = str(caught.value)
    assert str(path) in message and key in message and words in message, message
