"""The architecture families. Importing this package registers every model."""
from ._base import ZooModel

__all__ = ["ZooModel"]
