"""privplate: privacy-preserving automatic licence plate recognition.

Plates are read at the edge and stored only as keyed tokens; images are sealed; retention is
enforced by deleting rows and destroying keys; every privileged action is audited.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("privplate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from privplate.deployment import Deployment, init_deployment
from privplate.errors import PrivplateError
from privplate.sealing import generate_keypair, open_sealed, seal
from privplate.tokens import canonical_plate, plate_token

__all__ = [
    "Deployment",
    "PrivplateError",
    "__version__",
    "canonical_plate",
    "generate_keypair",
    "init_deployment",
    "open_sealed",
    "plate_token",
    "seal",
]
