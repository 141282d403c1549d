"""WebHDFS, Hadoop's REST protocol, on the master: `/webhdfs/v1/<path>?op=...`.

Metadata operations are answered here, with the JSON bodies of Hadoop's
WebHDFS documentation. Data operations (OPEN, CREATE, APPEND and
GETFILECHECKSUM) are redirected (307) to a chunkserver, which does the work
as a DFS client (webhdfs_data.py): to one holding the first chunk asked for
when reading, to the emptiest live one when writing. So existing WebHDFS
clients (fsspec's `webhdfs`, the `hdfs` package, curl) work unchanged.

Authentication, as Hadoop's with a shared secret instead of Kerberos:
- `delegation=TOKEN`: a token from `yard token` or GETDELEGATIONTOKEN (it
  names the user and expires), or the cluster secret itself;
- or the secret in an `Authorization` header: Basic (the user name is the
  caller) or Bearer. The caller is then
  `user.name=` if given, else the cluster's superuser.
A redirect carries a fresh delegation token for the same user, since HTTP
clients drop the Authorization header when they follow a redirect to
another host. Errors are Hadoop's `RemoteException` bodies and statuses.
"""

from __future__ import annotations

import base64
import grp
import json
import pwd
import random
import struct
import time
from urllib.parse import quote, urlencode

from aiohttp import web

from stackyard import errors
from stackyard.dfs.namespace import normalize
from stackyard.dfs.tokens import TokenStore
from stackyard.net.auth import REDIRECT_TOKEN, USER_TOKEN, Delegation, Secret

OWN_AUTH = ("/webhdfs/",)          # these routes check tokens themselves (identify)
# a chunkserver checks a redirect token once, as the data request starts, so
# it need only outlive the client's hop; a short life also bounds how long a
# redirect outlives the cancellation of the token it was issued for
REDIRECT_TOKEN_LIFETIME = 300.0
TOKEN_LIFETIME = 24 * 3600.0       # Hadoop's delegation-token renew interval


class UnsupportedOperation(ValueError):
    pass


# -- identity -------------------------------------------------------------------

def identify(secret: Secret, request: web.Request, default_user: str,
             tokens: TokenStore | None = None,
             kinds: tuple[str, ...] = (USER_TOKEN, REDIRECT_TOKEN)
             ) -> tuple[str, Delegation | None]:
    """(the user a WebHDFS request acts as, the delegation token it came with
    or None for the secret); AuthError if it proves nothing. TOKENS: the
    master's renewals and cancellations; KINDS: the tokens this daemon takes
    (a chunkserver takes only the master's redirect tokens, which a
    cancelled token can no longer get)."""
    q = request.query
    token = q.get("delegation")
    if token:
        if secret.matches(token.encode()):
            return q.get("user.name") or default_user, None
        if tokens is None:
            tok, reason = secret.check_delegation_token(token)
        else:
            tok, reason = secret.parse_delegation_token(token)
            reason = reason or tokens.why_not(tok, time.time())
        if reason is None and tok.kind not in kinds:
            reason = "this token is for the master (ask it for a redirect)"
        if reason:
            raise errors.AuthError(f"authentication failed: {reason}")
        return tok.user, tok
    header = request.headers.get("Authorization")
    if header is None:
        raise errors.AuthError("authentication required: pass delegation=<token> "
                               "(see `yard token`) or the cluster secret in an Authorization header")
    if header.lower().startswith("yard "):
        # our own signatures are for our RPC, which checks their target and nonce
        raise errors.AuthError("authentication failed: WebHDFS takes delegation=<token> or "
                               "the cluster secret as Basic or Bearer auth")
    _signed, reason = secret.check_header(request.method, request.path_qs, header)
    if reason:
        raise errors.AuthError(f"authentication failed: {reason}")
    if header.lower().startswith("basic "):
        basic_user = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")[0]
        return q.get("user.name") or basic_user or default_user, None
    return q.get("user.name") or default_user, None


def unix_groups(user: str) -> list[str]:
    """USER's groups on this host, as HDFS's shell-based group mapping."""
    try:
        primary = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        primary = None
    groups = [g.gr_name for g in grp.getgrall() if user in g.gr_mem]
    return ([primary] if primary else []) + [g for g in groups if g != primary]


# -- bodies ---------------------------------------------------------------------

_EXCEPTIONS = [  # (python class, Hadoop exception, java class, status); first match wins
    (errors.AuthError, "SecurityException", "java.lang.SecurityException", 401),
    (FileNotFoundError, "FileNotFoundException", "java.io.FileNotFoundException", 404),
    (FileExistsError, "FileAlreadyExistsException",
     "org.apache.hadoop.fs.FileAlreadyExistsException", 403),
    (errors.DirectoryNotEmptyError, "PathIsNotEmptyDirectoryException",
     "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", 403),
    (NotADirectoryError, "ParentNotDirectoryException",
     "org.apache.hadoop.fs.ParentNotDirectoryException", 403),
    (PermissionError, "AccessControlException",
     "org.apache.hadoop.security.AccessControlException", 403),
    (errors.LeaseHeldError, "AlreadyBeingCreatedException",
     "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException", 403),
    (errors.QuotaExceededError, "QuotaExceededException",
     "org.apache.hadoop.hdfs.protocol.QuotaExceededException", 403),
    (errors.StandbyError, "StandbyException", "org.apache.hadoop.ipc.StandbyException", 403),
    (errors.SafeModeError, "SafeModeException",
     "org.apache.hadoop.hdfs.server.namenode.SafeModeException", 403),
    (UnsupportedOperation, "UnsupportedOperationException",
     "java.lang.UnsupportedOperationException", 400),
    (ValueError, "IllegalArgumentException", "java.lang.IllegalArgumentException", 400),
    (OSError, "IOException", "java.io.IOException", 403),
    (errors.StackyardError, "IOException", "java.io.IOException", 403),
]


def remote_exception(exc: BaseException) -> web.Response:
    name, java, status = next(
        ((n, j, s) for cls, n, j, s in _EXCEPTIONS if isinstance(exc, cls)),
        ("RuntimeException", "java.lang.RuntimeException", 500))
    if isinstance(exc, FileNotFoundError) and exc.filename and \
            exc.strerror in (None, "No such file or directory"):
        message = f"File does not exist: {exc.filename}"
    elif isinstance(exc, OSError) and exc.strerror and exc.filename and \
            exc.filename in exc.strerror:
        message = exc.strerror
    else:
        message = errors.describe(exc)
    body = {"RemoteException": {"exception": name, "javaClassName": java, "message": message}}
    return web.json_response(body, status=status)


def file_status(st: dict, suffix: str) -> dict:
    is_dir = st["type"] == "directory"
    ms = int(st["mtime"] * 1000)
    return {"accessTime": 0 if is_dir else ms, "blockSize": st["chunk_size"],
            "childrenNum": st.get("children", 0), "group": st["group"], "length": st["length"],
            "modificationTime": ms, "owner": st["owner"], "pathSuffix": suffix,
            "permission": f"{st['mode']:o}", "replication": st["replication"],
            "storagePolicy": 0, "type": "DIRECTORY" if is_dir else "FILE"}


def checksum_body(algorithm_hex: tuple[str, str], chunk_size: int) -> dict:
    """Hadoop's MD5MD5CRC32FileChecksum: bytesPerCRC, crcPerBlock, then the MD5."""
    _algorithm, digest = algorithm_hex
    per_crc = 64 * 1024
    raw = struct.pack(">iq", per_crc, chunk_size // per_crc) + bytes.fromhex(digest)
    return {"FileChecksum": {"algorithm": f"MD5-of-{chunk_size // per_crc}MD5-of-{per_crc}CRC32C",
                             "bytes": raw.hex(), "length": len(raw)}}


def boolean(value: str | None, name: str, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if value.lower() not in ("true", "false"):
        raise ValueError(f'Invalid value for webhdfs parameter "{name}": "{value}" '
                         "is not a boolean")
    return value.lower() == "true"


def number(value: str | None, name: str, default: int | None = None, base: int = 10) -> int | None:
    if value is None or value == "":
        return default
    try:
        n = int(value, base)
    except ValueError:
        raise ValueError(f'Invalid value for webhdfs parameter "{name}": "{value}"') from None
    if n < 0:
        raise ValueError(f'Invalid value for webhdfs parameter "{name}": "{value}" is negative')
    return n


def request_path(request: web.Request) -> str:
    return normalize("/" + request.match_info.get("path", "").lstrip("/"))


def no_such_op(method: str, op: str) -> ValueError:
    kind = {"GET": "GetOpParam", "PUT": "PutOpParam", "POST": "PostOpParam",
            "DELETE": "DeleteOpParam"}.get(method, "HttpOpParam")
    return ValueError(f'Invalid value for webhdfs parameter "op": No enum constant '
                      f"org.apache.hadoop.hdfs.web.resources.{kind}.Op.{op or 'NULL'}")


# -- the master's side ----------------------------------------------------------

class WebHdfsMaster:
    """Routes /webhdfs/v1 on the master. The master core is called directly,
    on the event loop, as the msgpack RPCs call it."""

    DATA_OPS = {("GET", "OPEN"), ("PUT", "CREATE"), ("POST", "APPEND"),
                ("GET", "GETFILECHECKSUM")}

    def __init__(self, master):
        self.master = master
        self.secret: Secret = master.secret
        self.tokens = TokenStore(master.cfg.data_dir)
        self.meta = {
            ("GET", "GETFILESTATUS"): self.getfilestatus,
            ("GET", "LISTSTATUS"): self.liststatus,
            ("GET", "GETCONTENTSUMMARY"): self.getcontentsummary,
            ("GET", "GETHOMEDIRECTORY"): self.gethomedirectory,
            ("GET", "GETDELEGATIONTOKEN"): self.getdelegationtoken,
            ("PUT", "RENEWDELEGATIONTOKEN"): self.renewdelegationtoken,
            ("PUT", "CANCELDELEGATIONTOKEN"): self.canceldelegationtoken,
            ("PUT", "MKDIRS"): self.mkdirs,
            ("PUT", "RENAME"): self.rename,
            ("PUT", "SETREPLICATION"): self.setreplication,
            ("PUT", "SETPERMISSION"): self.setpermission,
            ("PUT", "SETOWNER"): self.setowner,
            ("DELETE", "DELETE"): self.delete,
            ("POST", "TRUNCATE"): self.truncate,
            ("GET", "GETSERVERDEFAULTS"): self.getserverdefaults,
        }

    def install(self, app: web.Application) -> None:
        app.router.add_route("*", "/webhdfs/v1{path:[\\s\\S]*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            # only people's tokens here: a redirect token is for the chunkserver it names
            user, tok = identify(self.secret, request, self.master.superuser, self.tokens,
                                 kinds=(USER_TOKEN,))
            op = request.query.get("op", "").upper()
            path = request_path(request)
            journal = self.master.journal
            if not journal.active:          # Hadoop's client fails over on StandbyException
                category = "READ" if request.method == "GET" else "WRITE"
                raise errors.StandbyError(f"Operation category {category} is not supported in "
                                          "state standby", journal.leader)
            if (request.method, op) in self.DATA_OPS:
                reply = self.redirect(request, op, path, user, tok)
                await journal.acknowledged(read=True)
                return reply
            handler = self.meta.get((request.method, op))
            if handler is None:
                raise no_such_op(request.method, op)
            result = handler(path, request.query, {"user": user, "groups": unix_groups(user),
                                                   "token": tok})
            await journal.acknowledged(read=request.method == "GET")
        except Exception as exc:   # every failure becomes a RemoteException body
            return remote_exception(exc)
        if result is None:
            return web.Response(status=200)
        return web.json_response(result)

    # metadata

    def _stat(self, path: str, who: dict) -> dict:
        return self.master.rpc_stat({**who, "path": path})

    def getfilestatus(self, path, q, who):
        return {"FileStatus": file_status(self._stat(path, who), "")}

    def liststatus(self, path, q, who):
        entries = self.master.rpc_list({**who, "path": path})
        if self._stat(path, who)["type"] == "file":
            return {"FileStatuses": {"FileStatus": [file_status(entries[0], "")]}}
        return {"FileStatuses": {"FileStatus": [file_status(e, e["name"]) for e in entries]}}

    def getcontentsummary(self, path, q, who):
        self._stat(path, who)
        du = self.master.rpc_du({**who, "path": path})
        return {"ContentSummary": {"directoryCount": du["directories"], "fileCount": du["files"],
                                   "length": du["length"], "quota": -1,
                                   "spaceConsumed": du["space"], "spaceQuota": -1,
                                   "typeQuota": {}}}

    def gethomedirectory(self, path, q, who):
        return {"Path": f"/user/{who['user']}"}

    def getdelegationtoken(self, path, q, who):
        """A token got with a token keeps the first one's issue date, so no
        chain of them outlives the maximum lifetime."""
        held = who["token"]
        issued = held.issued if held is not None else None
        return {"Token": {"urlString": self.secret.delegation_token(
            who["user"], TOKEN_LIFETIME, issued=issued)}}

    def _named_token(self, q, who) -> Delegation:
        tok, reason = self.secret.parse_delegation_token(q.get("token") or "")
        if reason is None and tok.kind != USER_TOKEN:
            reason = "only a delegation token can be renewed or cancelled, not a redirect's"
        if reason:
            raise ValueError(f'Invalid value for webhdfs parameter "token": {reason}')
        if who["user"] not in (tok.user, self.master.superuser) and who["token"] is not None:
            raise PermissionError(f"{who['user']} may not renew or cancel a token of {tok.user}")
        return tok

    def renewdelegationtoken(self, path, q, who):
        expiry = self.tokens.renew(self._named_token(q, who), time.time())
        return {"long": expiry * 1000}

    def canceldelegationtoken(self, path, q, who):
        self.tokens.cancel(self._named_token(q, who), time.time())
        return None

    def mkdirs(self, path, q, who):
        mode = number(q.get("permission"), "permission", 0o755, base=8)
        self.master.rpc_mkdir({**who, "path": path, "parents": True, "mode": mode})
        return {"boolean": True}

    def rename(self, path, q, who):
        dst = q.get("destination")
        if not dst or not dst.startswith("/"):
            raise ValueError('Invalid value for webhdfs parameter "destination": '
                             f'"{dst or ""}" is not an absolute path')
        try:
            self.master.rpc_rename({**who, "src": path, "dst": dst})
        except (FileNotFoundError, FileExistsError):
            return {"boolean": False}   # as HDFS's rename(): false, not an exception
        return {"boolean": True}

    def delete(self, path, q, who):
        recursive = boolean(q.get("recursive"), "recursive")
        if path == "/":
            return {"boolean": False}
        try:
            self.master.rpc_delete({**who, "path": path, "recursive": recursive})
        except FileNotFoundError:
            return {"boolean": False}
        return {"boolean": True}

    def getserverdefaults(self, path, q, who):
        d = self.master.rpc_server_defaults({})
        return {"FsServerDefaults": {
            "blockSize": d["chunk_size"], "bytesPerChecksum": d["bytes_per_checksum"],
            "writePacketSize": 65536, "replication": d["replication"], "fileBufferSize": 4096,
            "encryptDataTransfer": False, "trashInterval": int(d["trash_interval"]),
            "checksumType": 2, "keyProviderUri": "", "defaultStoragePolicyId": 7}}

    def truncate(self, path, q, who):
        length = number(q.get("newlength"), "newlength")
        if length is None:
            raise ValueError('Invalid value for webhdfs parameter "newlength": it is required')
        return {"boolean": self.master.rpc_truncate({**who, "path": path, "length": length})}

    def setreplication(self, path, q, who):
        n = number(q.get("replication"), "replication", self.master.cfg.default_replication)
        if self._stat(path, who)["type"] == "directory":
            return {"boolean": False}
        self.master.rpc_setrep({**who, "path": path, "replication": n})
        return {"boolean": True}

    def setpermission(self, path, q, who):
        mode = number(q.get("permission"), "permission", 0o755, base=8)
        self.master.rpc_chmod({**who, "path": path, "mode": mode})

    def setowner(self, path, q, who):
        owner, group = q.get("owner"), q.get("group")
        if not owner and not group:
            raise ValueError("Both owner and group are empty")
        self.master.rpc_chown({**who, "path": path, "owner": owner, "group": group})

    # data: checked here, done by a chunkserver

    def redirect(self, request: web.Request, op: str, path: str, user: str,
                 tok: Delegation | None = None) -> web.Response:
        who = {"user": user, "groups": unix_groups(user)}
        q = request.query
        if op == "CREATE":
            overwrite = boolean(q.get("overwrite"), "overwrite")
            existing = self.master.ns.lookup(path)
            if existing is not None and (existing.is_dir or not overwrite):
                kind = "directory" if existing.is_dir else "file"
                raise FileExistsError(17, f"{path} already exists as a {kind}", path)
            address = self._emptiest_server()
        else:
            st = self._stat(path, who)
            if st["type"] != "file":
                raise FileNotFoundError(2, f"Path is not a file: {path}", path)
            offset = number(q.get("offset"), "offset", 0) if op == "OPEN" else 0
            chunks = self.master.rpc_locations({**who, "path": path, "offset": offset,
                                                "length": 1})["chunks"]
            holders = [loc["address"] for c in chunks for loc in c["locations"]]
            address = random.choice(holders) if holders else self._emptiest_server()
        params = {k: v for k, v in q.items() if k not in ("delegation", "user.name", "op",
                                                          "noredirect")}
        params = {"op": op, **params, "namenoderpcaddress": request.host,
                  "delegation": self.secret.delegation_token(
                      user, REDIRECT_TOKEN_LIFETIME, kind=REDIRECT_TOKEN,
                      issued=tok.issued if tok is not None else None)}
        location = (f"{self.secret.scheme}://{address}/webhdfs/v1{quote(path)}?"
                    f"{urlencode(params)}")
        if boolean(q.get("noredirect"), "noredirect"):
            return web.Response(text=json.dumps({"Location": location}),
                                content_type="application/json")
        return web.Response(status=307, headers={"Location": location})

    def _emptiest_server(self) -> str:
        live = [s for s in self.master.chunkmap.servers.values() if s.alive]
        if not live:
            raise errors.ClusterUnavailable("no live chunkserver to serve the data")
        best = max(s.free for s in live)
        return random.choice([s for s in live if s.free >= best * 0.9]).address
