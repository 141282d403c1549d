"""Errors a Stackyard client can see, and their wire codes.

    Exception
    ├── StackyardError
    │   ├── ClusterUnavailable (also ConnectionError)   retryable: daemon unreachable
    │   ├── RemoteError                                  a daemon failed unexpectedly
    │   ├── SafeModeError                                retryable: master starting up
    │   ├── StandbyError                                 retryable: ask the active master
    │   ├── NotServingError                              retryable: the tablet is elsewhere now
    │   ├── TableNotFoundError                           no such table
    │   ├── TableExistsError                             the table exists already
    │   └── TableDisabledError                           the table is disabled
    ├── PermissionError
    │   └── AuthError                                    wrong or missing cluster secret
    ├── OSError (file-system errors, as fsspec raises them)
    │   ├── FileNotFoundError      No such file or directory
    │   ├── FileExistsError        File exists
    │   ├── IsADirectoryError      Is a directory
    │   ├── NotADirectoryError     Not a directory
    │   ├── PermissionError        Permission denied
    │   ├── DirectoryNotEmptyError Directory is not empty
    │   ├── LeaseHeldError         another writer holds the file's lease
    │   ├── LimitExceededError     a directory would pass its item limit
    │   ├── QuotaExceededError     a directory's name or space quota would be passed
    │   └── CorruptDataError       every replica of a chunk failed its checksum / is missing
    └── ValueError                 a bad argument (names it)
        └── RequestTooLarge        a request past a daemon's bound (path, body)

A daemon sends an error as {"error": CODE, "message": ..., "path": ...}; the
client turns CODE back into the class with `from_wire`. One table, both ways.
"""

from __future__ import annotations

import errno


class StackyardError(Exception):
    """Base of the errors that are about the cluster, not about a path."""

    retryable = False


class ClusterUnavailable(StackyardError, ConnectionError):
    retryable = True


class RemoteError(StackyardError):
    pass


class SafeModeError(StackyardError):
    retryable = True


class StandbyError(StackyardError):
    """This master is a standby (HDFS's StandbyException); `active` is the
    address of the active one when known."""

    retryable = True

    def __init__(self, message: str = "this master is a standby", active: str | None = None):
        super().__init__(message)
        self.active = active


class AuthError(PermissionError):
    pass


class RequestTooLarge(ValueError):
    pass


class DirectoryNotEmptyError(OSError):
    pass


class LeaseHeldError(OSError):
    pass


class CorruptDataError(OSError):
    pass


class LimitExceededError(OSError):
    pass


class QuotaExceededError(OSError):
    pass


class NotServingError(StackyardError):
    pass


class TableNotFoundError(StackyardError):
    pass


class TableExistsError(StackyardError):
    pass


class TableDisabledError(StackyardError):
    pass


# code -> (class, errno, Hadoop's wording)
_CODES: dict[str, tuple[type[BaseException], int | None, str]] = {
    "ENOENT": (FileNotFoundError, errno.ENOENT, "No such file or directory"),
    "EEXIST": (FileExistsError, errno.EEXIST, "File exists"),
    "EISDIR": (IsADirectoryError, errno.EISDIR, "Is a directory"),
    "ENOTDIR": (NotADirectoryError, errno.ENOTDIR, "Not a directory"),
    "EACCES": (PermissionError, errno.EACCES, "Permission denied"),
    "ENOTEMPTY": (DirectoryNotEmptyError, errno.ENOTEMPTY, "Directory is not empty"),
    "EBUSY": (LeaseHeldError, errno.EBUSY, "Lease held by another writer"),
    "EIO": (CorruptDataError, errno.EIO, "Corrupt or missing data"),
    "ELIMIT": (LimitExceededError, errno.ENOSPC, "A file system limit is exceeded"),
    "EQUOTA": (QuotaExceededError, errno.EDQUOT, "Quota exceeded"),
    "EAUTH": (AuthError, None, "Authentication failed"),
    "EINVAL": (ValueError, None, "Invalid argument"),
    "E2BIG": (RequestTooLarge, None, "Request too large"),
    "ESAFEMODE": (SafeModeError, None, "Master is in safe mode"),
    "ESTANDBY": (StandbyError, None, "Master is a standby"),
    "EREMOTE": (RemoteError, None, "Remote error"),
    "ENOTSERVING": (NotServingError, None, "Tablet not served here"),
    "ENOTABLE": (TableNotFoundError, None, "Table not found"),
    "ETABLEEXISTS": (TableExistsError, None, "Table exists"),
    "EDISABLED": (TableDisabledError, None, "Table is disabled"),
}


def fs_error(code: str, path: str | None = None, detail: str | None = None) -> BaseException:
    """Build the exception for CODE the way both daemon and client raise it."""
    cls, num, text = _CODES.get(code, _CODES["EREMOTE"])
    message = detail or text
    if num is not None:
        return cls(num, message, path) if path is not None else cls(num, message)
    return cls(message)


def to_wire(exc: BaseException) -> dict:
    code = next((c for c, (cls, _, _) in _CODES.items() if type(exc) is cls), None)
    if code is None:
        code = next((c for c, (cls, _, _) in _CODES.items() if isinstance(exc, cls)), "EREMOTE")
    if isinstance(exc, OSError) and exc.strerror:
        return {"error": code, "message": exc.strerror, "path": exc.filename}
    if isinstance(exc, StandbyError):
        return {"error": code, "message": str(exc), "path": None, "active": exc.active}
    return {"error": code, "message": str(exc), "path": None}


def from_wire(body: dict) -> BaseException:
    exc = fs_error(body.get("error", "EREMOTE"), body.get("path"), body.get("message"))
    if isinstance(exc, StandbyError) and isinstance(body.get("active"), str):
        exc.active = body["active"]
    return exc


def describe(exc: BaseException) -> str:
    """One line for a CLI user: Hadoop's `path': reason` shape where there is a path."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"`{exc.filename}': {exc.strerror}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
