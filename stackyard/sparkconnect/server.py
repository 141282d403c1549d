"""The `connect` daemon: a gRPC server speaking spark.connect.SparkConnectService,
so PySpark's DataFrame API (pyspark-client) runs on Stackyard unchanged.

Every call must carry the cluster secret, or a token from `yard token`, as a
bearer token (`sc://localhost:PORT/;token=...`); without the cluster's TLS
the server takes only loopback connections with gRPC's local credentials
(what PySpark uses for `localhost` with a token), with TLS any host."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from concurrent import futures
from pathlib import Path

import grpc
from pyspark.sql.connect.proto import base_pb2 as B
from pyspark.sql.connect.proto import base_pb2_grpc as G

from stackyard.sparkconnect import analyze, conf, execute
from stackyard.sparkconnect.errors import ConnectError, ErrorStore, abort, from_exception
from stackyard.sparkconnect.session import ConnectSession

log = logging.getLogger(__name__)
SESSION_IDLE = 3600.0          # Spark: spark.connect.session.manager.defaultSessionTimeout
MAX_MESSAGE = 128 << 20


class Auth(grpc.ServerInterceptor):
    def __init__(self, secret):
        self.secret = secret

    def user(self, metadata) -> tuple[str | None, str]:
        header = dict(metadata).get("authorization", "")
        if not header.lower().startswith("bearer "):
            return None, ("this Stackyard server needs the cluster secret or a token from "
                          "`yard token`: connect with sc://localhost:PORT/;token=TOKEN")
        token = header[7:].strip()
        if self.secret.matches(token.encode()):
            return "", ""
        tok, why = self.secret.check_delegation_token(token)
        if tok is None:
            return None, f"token refused: {why}"
        return tok.user, ""

    def intercept_service(self, continuation, details):
        who, why = self.user(details.invocation_metadata)
        if who is None:
            def deny(request, context):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, why)
            handler = continuation(details)
            if handler is None:
                return None
            if handler.request_streaming:
                return grpc.stream_unary_rpc_method_handler(
                    lambda it, ctx: deny(None, ctx))
            if handler.response_streaming:
                return grpc.unary_stream_rpc_method_handler(deny)
            return grpc.unary_unary_rpc_method_handler(deny)
        return continuation(details)


class Servicer(G.SparkConnectServiceServicer):
    def __init__(self, client, data_dir: Path):
        self.client = client
        self.sessions: dict[tuple[str, str], ConnectSession] = {}
        self.lock = threading.Lock()
        self.errors = ErrorStore()
        self.global_tables: dict[str, dict] = {}
        self.artifact_root = data_dir / "artifacts"
        self.artifact_root.mkdir(parents=True, exist_ok=True)

    # -- sessions -----------------------------------------------------------------------

    def session(self, req, create: bool = True) -> ConnectSession:
        user = req.user_context.user_id if req.HasField("user_context") else ""
        sid = req.session_id
        try:
            uuid.UUID(sid)
        except ValueError:
            raise ConnectError("INVALID_HANDLE.FORMAT",
                               f"The handle {sid} is invalid. Handle must be an UUID string "
                               "of the format '00112233-4455-6677-8899-aabbccddeeff'",
                               "HY000") from None
        key = (user, sid)
        with self.lock:
            s = self.sessions.get(key)
            if s is None:
                if not create:
                    raise ConnectError("INVALID_HANDLE.SESSION_NOT_FOUND",
                                       f"Session not found: {sid}", "HY000")
                s = self.sessions[key] = ConnectSession(self, user, sid)
            observed = getattr(req, "client_observed_server_side_session_id", "")
            if observed and observed != s.server_side_id:
                raise ConnectError("INVALID_HANDLE.SESSION_CHANGED",
                                   "The existing Spark server driver instance has restarted. "
                                   "Please reconnect.", "HY000")
            s.last_used = time.time()
            return s

    def reap(self) -> None:
        now = time.time()
        with self.lock:
            idle = [k for k, s in self.sessions.items() if now - s.last_used > SESSION_IDLE]
            gone = [self.sessions.pop(k) for k in idle]
        for s in gone:
            s.close()

    def _fail(self, context, e: BaseException) -> None:
        err = from_exception(e)
        if not isinstance(e, ConnectError):
            log.warning("connect call failed: %s", e, exc_info=e)
        abort(context, err, self.errors.add(err, e))

    # -- RPCs ---------------------------------------------------------------------------

    def ExecutePlan(self, request, context):  # noqa: N802
        try:
            s = self.session(request)
            op = request.operation_id or str(uuid.uuid4())
            with s.lock:
                s.sql.settings.update({})
                out = execute.responses(s, request, op)
                s.executions[op] = out
        except Exception as e:
            self._fail(context, e)
            return
        # a copy: the client releases what it has read while this streams
        yield from list(out)

    def ReattachExecute(self, request, context):  # noqa: N802
        try:
            s = self.session(request, create=False)
            out = s.executions.get(request.operation_id)
            if out is None:
                raise ConnectError("INVALID_HANDLE.OPERATION_NOT_FOUND",
                                   f"Operation not found: {request.operation_id}", "HY000")
        except Exception as e:
            self._fail(context, e)
            return
        start = 0
        if request.HasField("last_response_id"):
            ids = [r.response_id for r in out]
            if request.last_response_id in ids:
                start = ids.index(request.last_response_id) + 1
        yield from out[start:]

    def ReleaseExecute(self, request, context):  # noqa: N802
        try:
            s = self.session(request, create=False)
            out = s.executions.get(request.operation_id)
            if out is not None:
                if request.HasField("release_until"):
                    ids = [r.response_id for r in out]
                    rid = request.release_until.response_id
                    if rid in ids:
                        del out[:ids.index(rid) + 1]
                else:
                    s.executions.pop(request.operation_id, None)
            return B.ReleaseExecuteResponse(session_id=s.session_id,
                                            server_side_session_id=s.server_side_id,
                                            operation_id=request.operation_id)
        except Exception as e:
            self._fail(context, e)

    def AnalyzePlan(self, request, context):  # noqa: N802
        try:
            s = self.session(request)
            with s.lock:
                return analyze.analyze(s, request)
        except Exception as e:
            self._fail(context, e)

    def Config(self, request, context):  # noqa: N802
        try:
            s = self.session(request)
            out = B.ConfigResponse(session_id=s.session_id,
                                   server_side_session_id=s.server_side_id)
            conf.handle(s.conf, request.operation, out)
            return out
        except Exception as e:
            self._fail(context, e)

    def AddArtifacts(self, request_iterator, context):  # noqa: N802
        try:
            s = None
            out = B.AddArtifactsResponse()
            current = None
            for req in request_iterator:
                s = s or self.session(req)
                kind = req.WhichOneof("payload")
                if kind == "batch":
                    for a in req.batch.artifacts:
                        ok = s.artifacts.put(a.name, a.data.data, a.data.crc)
                        out.artifacts.add(name=a.name, is_crc_successful=ok)
                elif kind == "begin_chunk":
                    b = req.begin_chunk
                    current = [b.name, s.artifacts.put(b.name, b.initial_chunk.data,
                                                       b.initial_chunk.crc)]
                    if b.num_chunks <= 1:
                        out.artifacts.add(name=current[0], is_crc_successful=current[1])
                        current = None
                elif kind == "chunk" and current is not None:
                    current[1] = s.artifacts.put(current[0], req.chunk.data, req.chunk.crc,
                                                 append=True) and current[1]
            if current is not None:
                out.artifacts.add(name=current[0], is_crc_successful=current[1])
            if s is not None:
                out.session_id, out.server_side_session_id = s.session_id, s.server_side_id
            return out
        except Exception as e:
            self._fail(context, e)

    def ArtifactStatus(self, request, context):  # noqa: N802
        try:
            s = self.session(request)
            out = B.ArtifactStatusesResponse(session_id=s.session_id,
                                             server_side_session_id=s.server_side_id)
            for name in request.names:
                out.statuses[name].exists = s.artifacts.exists(name)
            return out
        except Exception as e:
            self._fail(context, e)

    def Interrupt(self, request, context):  # noqa: N802
        try:
            s = self.session(request)
            ids = s.interrupt()
            return B.InterruptResponse(session_id=s.session_id,
                                       server_side_session_id=s.server_side_id,
                                       interrupted_ids=ids)
        except Exception as e:
            self._fail(context, e)

    def ReleaseSession(self, request, context):  # noqa: N802
        try:
            user = request.user_context.user_id if request.HasField("user_context") else ""
            with self.lock:
                s = self.sessions.pop((user, request.session_id), None)
            if s is not None:
                s.close()
            return B.ReleaseSessionResponse(session_id=request.session_id,
                                            server_side_session_id=s.server_side_id if s
                                            else "")
        except Exception as e:
            self._fail(context, e)

    def FetchErrorDetails(self, request, context):  # noqa: N802
        try:
            s = self.session(request)
            out = self.errors.details(request.error_id)
            out.session_id, out.server_side_session_id = s.session_id, s.server_side_id
            return out
        except Exception as e:
            self._fail(context, e)

    def close(self) -> None:
        with self.lock:
            sessions, self.sessions = list(self.sessions.values()), {}
        for s in sessions:
            s.close()


def build_server(servicer: Servicer, secret, host: str, port: int, tls: dict | None = None,
                 workers: int = 16) -> tuple[grpc.Server, int]:
    opts = [("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         interceptors=[Auth(secret)], options=opts)
    G.add_SparkConnectServiceServicer_to_server(servicer, server)
    if tls:
        creds = grpc.ssl_server_credentials([(Path(tls["key"]).read_bytes(),
                                              Path(tls["cert"]).read_bytes())])
    else:
        creds = grpc.local_server_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    bound = server.add_secure_port(f"{host}:{port}", creds)
    if not bound:
        raise OSError(f"cannot bind {host}:{port} (address already in use?)")
    return server, bound


class ConnectDaemon:
    def __init__(self, cfg):
        self.cfg = cfg

    async def run(self) -> None:
        from stackyard.connect import Client
        from stackyard.net.auth import Secret
        cfg = self.cfg
        secret = Secret.load(cfg.secret_file, cfg.tls_ca or None)
        client = Client(cfg.master, secret, addresses={
            "coord": [a for a in cfg.coords.split(",") if a],
            "scheduler": [cfg.scheduler] if cfg.scheduler else []})
        servicer = Servicer(client, Path(cfg.data_dir))
        tls = {"cert": cfg.tls_cert, "key": cfg.tls_key} if cfg.tls_cert else None
        host = cfg.host
        server, port = build_server(servicer, secret, host, cfg.port, tls)
        server.start()
        if cfg.addr_file:
            tmp = cfg.addr_file + ".tmp"
            Path(tmp).write_text(f"{cfg.host}:{port}\n")
            os.replace(tmp, cfg.addr_file)
        log.info("Spark Connect (protocol of Spark %s) on %s:%d", analyze.SPARK_VERSION,
                 cfg.host, port)
        try:
            while True:
                await asyncio.sleep(30)
                await asyncio.to_thread(servicer.reap)
        finally:
            server.stop(2)
            servicer.close()
            client.close()
