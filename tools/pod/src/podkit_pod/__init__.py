"""podkit_pod: the podman-compatible `pod` command, composing the stage libraries in-process."""

__version__ = "0.1.0"
