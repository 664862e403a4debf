"""Tests of server/demo/."""
