"""Tests of study.stats."""
