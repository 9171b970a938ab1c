"""The books: the account mapping, the journal built with it, and the tie-out to the provider.

:mod:`.journal` is the one place that decides accounts, signs and rounding; every book format is
a layout of its entries (docs/booking.md).
"""
