"""Stackyard: the Google / Hadoop big-data stack in Python.

    import stackyard as sy
    fs = sy.connect().fs
"""

from stackyard.connect import Client, connect
from stackyard.dataset.storage import StorageLevel

__version__ = "0.1.0"
__all__ = ["Client", "connect", "StorageLevel", "__version__"]
