"""The one exception type the library raises for problems a user can fix."""


class ExplainerError(ValueError):
    """Bad input, model or option. ``str(err)`` is a plain message fit to show a user."""
