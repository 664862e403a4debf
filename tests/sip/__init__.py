"""Tests of server/sip/."""
