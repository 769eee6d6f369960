"""The architecture analyzer: :func:`profile` any ``nn.Module`` layer by layer."""
from .ops import CATEGORIES, DEFAULT_COUNT
from .profile import (LayerRow, ModelForwardError, Profile, ProfileOptionError, Totals, UnsupportedModelError,
                      profile)
from .receptive_field import ReceptiveField

__all__ = ["profile", "Profile", "LayerRow", "Totals", "ReceptiveField", "ModelForwardError",
           "ProfileOptionError", "UnsupportedModelError", "CATEGORIES", "DEFAULT_COUNT"]
