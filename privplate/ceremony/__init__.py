"""Key ceremonies for the evidence key: dealing, share files, re-sharing.

Nothing here is imported by the server: :mod:`privplate.ceremony.reconstruct` (the only code
that rebuilds x) is used by re-sharing alone."""
