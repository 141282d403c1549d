"""Stackyard: the Google / Hadoop big-data stack in Python.

    import stackyard as sy
    fs = sy.connect().fs
"""

from stackyard.connect import Client, connect

__version__ = "0.1.0"
__all__ = ["Client", "connect", "__version__"]
