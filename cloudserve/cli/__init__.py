"""The cloudserve command line."""
