"""The user-error base class. DataError (mocodata), ConversionError (converters), ConfigError (pretrain)
and BadInput (transfer) derive from it, so an entry point catches one class."""
import sys


class UserError(ValueError):
    """What the user gave cannot run (a file, a flag, data, a config): str(e) names it and says what to do."""


def refuse(message):
    """The bad-input contract: one paragraph on stderr, exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2
