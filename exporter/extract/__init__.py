"""Extraction: the account API over HTTP, its pages, and the validation of what it returns.

:func:`extract` walks every page of a window's billing records; :class:`.client.BillingClient`
is the one HTTP client (retries, timeouts, envelope), imported from its module by whoever calls
the API (it loads requests, which a ``--from-source`` render never needs); :mod:`.records`
validates raw records into columns, the same rules for the API and for an archive read back.
"""

from __future__ import annotations

from .billings import Extraction, LineSink, TooManyRecords, extract
from .generations import OTHER_TYPE_FILTERS, CurrentApi, Generation, LegacyApi, detect
from .endpoints import (
    BALANCE_PATH,
    BILLINGS_PATH,
    USAGE_COLUMNS,
    BadBalanceCurrency,
    USAGE_PATH,
    fetch_balance,
    fetch_provider_days,
    fetch_provider_usage,
    parse_provider_usage,
    usage_in_provider_days,
)

__all__ = [
    "OTHER_TYPE_FILTERS",
    "CurrentApi",
    "detect",
    "fetch_provider_days",
    "Generation",
    "LegacyApi",
    "BALANCE_PATH",
    "BILLINGS_PATH",
    "USAGE_COLUMNS",
    "USAGE_PATH",
    "BadBalanceCurrency",
    "Extraction",
    "TooManyRecords",
    "LineSink",
    "extract",
    "fetch_balance",
    "fetch_provider_usage",
    "parse_provider_usage",
    "usage_in_provider_days",
]
