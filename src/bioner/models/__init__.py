"""Models: the :class:`Tagger` interface, one module per tagger kind, and :func:`load_tagger`.

``from bioner.models import load_tagger; load_tagger("runs/x").tag_text("...")``.
"""

from bioner.models.base import Tagger
from bioner.models.loading import load_tagger

__all__ = ["Tagger", "load_tagger"]
