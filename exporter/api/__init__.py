"""HTTP access to the WaveSpeedAI account API."""

from __future__ import annotations

from .client import DEFAULT_BASE_URL, BillingClient, RetryPolicy
from .paginators import PageNumberPaginator

__all__ = ["DEFAULT_BASE_URL", "BillingClient", "PageNumberPaginator", "RetryPolicy"]
