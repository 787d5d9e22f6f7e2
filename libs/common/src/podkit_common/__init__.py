"""podkit_common: what every podkit stage shares.

Modules (import the one you need; this package imports nothing on its own so that a
stage's cold start stays cheap):

- ``errors``   the exception tree, the exit-code table, the JSON error envelope
- ``jsonio``   one JSON document in, one out (stdlib json); JSON lines for listings
- ``schemas``  the local schema registry (URN ``$id``s, no network)
- ``roots``    ``--root`` / ``--runroot`` / PODKIT_ROOT / PODKIT_RUNROOT resolution
- ``atomic``   temp + fsync + rename writes
- ``locks``    per-object file locks
- ``progress`` progress on stderr: bar, JSON lines, or nothing
- ``cli``      the typer glue shared by every executable (imports typer)
"""

__version__ = "0.1.0"
