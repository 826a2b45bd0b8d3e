"""The transfer suite: protocols, runners, reports."""


class BadInput(ValueError):
    """What the user gave cannot run (file, flag, data, config): str(e) names it and says what to do. Every
    entry point of transfer/ exits 2 with it, before any work."""
