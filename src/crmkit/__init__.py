"""crmkit: a pure-Python CRM domain library."""

from crmkit._version import __version__

__all__ = ["__version__"]
