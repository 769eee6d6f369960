"""The architecture families. Importing this package registers every model."""
from ._base import ZooModel
from . import resnet  # noqa: F401,E402
from . import lenet  # noqa: F401,E402
from . import alexnet  # noqa: F401,E402
from . import vgg  # noqa: F401,E402
from . import googlenet  # noqa: F401,E402

__all__ = ["ZooModel"]
