"""wavespeed-export: a WaveSpeedAI account's billing history as an accountant's month-end pack."""

from __future__ import annotations

__version__ = "0.1.0"
