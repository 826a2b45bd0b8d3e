"""The transfer suite: protocols, runners, reports."""


from mococore.errors import UserError


class BadInput(UserError):
    """What the user gave cannot run (file, flag, data, config): str(e) names it and says what to do. Every
    entry point of transfer/ exits 2 with it, before any work."""
