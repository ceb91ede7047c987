"""The package version, in one place (the front end's package.json must match; a test checks)."""

VERSION = "0.1.0"
