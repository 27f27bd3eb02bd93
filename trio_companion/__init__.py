"""trio_companion: a Discord AI companion bot built on trio.

Layers (arrows point to what a layer may import)::

    cli ──► app ──► services/* ──► storage/
                 ├─► gateway/   (Discord gateway, REST, interactions)
                 └─► voice/     (voice gateway, UDP/RTP, crypto, DAVE, Opus)
"""

from trio_companion.errors import CompanionError

__version__ = "0.1.0"

__all__ = ["CompanionError", "__version__"]
