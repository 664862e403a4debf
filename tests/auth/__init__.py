"""Tests of server/auth/."""
