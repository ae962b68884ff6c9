"""Fits of device statistics from measured data."""
