"""The architecture families. Importing this package registers every model, family by family in
the lecture's order, which is therefore the registry's (:func:`cnnzoo.registry.families`)."""
from ._base import ZooModel
from . import lenet  # noqa: F401,E402
from . import alexnet  # noqa: F401,E402  (and ZFNet)
from . import vgg  # noqa: F401,E402
from . import googlenet  # noqa: F401,E402
from . import resnet  # noqa: F401,E402

__all__ = ["ZooModel"]
