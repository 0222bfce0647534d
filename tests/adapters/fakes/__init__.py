"""Stateful loopback fakes of cloud APIs that have no emulator."""
