"""Tests for pod-storage."""
