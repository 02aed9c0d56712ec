"""Runtime names that generated code uses, looked up on the runtime itself.

Renaming one of these in `micro` breaks generation here, loudly, instead of
producing code that fails at import time.
"""

from __future__ import annotations

from typing import Any

import micro
import micro.errors
import micro.spec

ALIAS = "_micro"
ALIAS_MODULE = micro.__name__
RUNTIME_IMPORT = f"import {ALIAS_MODULE} as {ALIAS}"
# An `output=specs` module imports only the spec module, under the same alias (`import
# micro` would be an import circle for the runtime's own built-in services).
SPECS_MODULE = micro.spec.__name__
_SPECS_PARENT, _, _SPECS_NAME = SPECS_MODULE.rpartition(".")
SPECS_IMPORT = f"from {_SPECS_PARENT} import {_SPECS_NAME} as {ALIAS}"


def _ref(owner: Any, obj: Any, prefix: str) -> str:
    name: str = obj.__name__
    if getattr(owner, name, None) is not obj:
        raise RuntimeError(f"runtime name {prefix}{name} is missing from the micro runtime")
    return f"{prefix}{name}"


def _spec_ref(obj: Any) -> str:
    """A name that `output=specs` modules use too: the same object on micro.spec as on micro."""
    _ref(micro.spec, obj, f"{SPECS_MODULE}.")
    return _ref(micro, obj, f"{ALIAS}.")


KIND = _spec_ref(micro.Kind)
HTTP_RULE = _spec_ref(micro.HttpRule)
IDEMPOTENCY = _spec_ref(micro.Idempotency)
METHOD = _spec_ref(micro.Method)
SERVICE_SPEC = _spec_ref(micro.ServiceSpec)
PROTO_FILE = _spec_ref(micro.ProtoFile)
COLLECT_FILES = _ref(micro.ProtoFile, micro.ProtoFile.collect, f"{PROTO_FILE}.")
STUB = _ref(micro, micro.Stub, f"{ALIAS}.")
HANDLER = _ref(micro, micro.Handler, f"{ALIAS}.")
CONTEXT = _ref(micro, micro.Context, f"{ALIAS}.")
SERVICE = _ref(micro, micro.Service, f"{ALIAS}.")
SERVER_STREAM = _ref(micro, micro.ServerStream, f"{ALIAS}.")
BIDI_STREAM = _ref(micro, micro.BidiStream, f"{ALIAS}.")
SYNC_STUB = _ref(micro, micro.SyncStub, f"{ALIAS}.")
SYNC_SERVER_STREAM = _ref(micro, micro.SyncServerStream, f"{ALIAS}.")
SYNC_BIDI_STREAM = _ref(micro, micro.SyncBidiStream, f"{ALIAS}.")
UNIMPLEMENTED = _ref(micro.errors, micro.errors.unimplemented, f"{ALIAS}.errors.")
METADATA = f"{ALIAS}.Metadata"
if not hasattr(micro, "Metadata"):
    raise RuntimeError("runtime name _micro.Metadata is missing from the micro runtime")

# Stub methods the generated clients call, one per RPC kind.
for _stub in (micro.Stub, micro.SyncStub):
    for _attr in ("_unary", "_server_stream", "_client_stream", "_bidi_stream"):
        if not callable(getattr(_stub, _attr, None)):
            raise RuntimeError(f"micro.{_stub.__name__}.{_attr} is missing from the runtime")
