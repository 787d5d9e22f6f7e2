"""podkit_netsetup."""

__version__ = "0.1.0"
