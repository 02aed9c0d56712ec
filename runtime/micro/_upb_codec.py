"""The fast codec for betterproto2 messages: dataclass ⇄ upb message ⇄ bytes.

Imported by :mod:`micro.codec` only when protobuf is installed (``micro-runtime[fast]``).
A betterproto2 class is matched to its descriptor by its full proto name (from the message
pool its generated package registers it in) in the compiled files that every generated
micro module embeds (``_FILES``) or that :func:`register_files` was given; no ``_pb2``
module is needed. Those files go into a private upb descriptor pool, and upb's message
class for the type does the wire work: serializing, and parsing strictly.

Per message type a *plan* is built once: two small Python functions, generated from the
class's betterproto2 field metadata checked against the descriptor, that convert a
dataclass into the keyword arguments of the upb constructor (nested messages as nested
dicts, so one C call builds the whole tree) and a parsed upb message back into the
dataclass (created without running ``__init__``, every field assigned). Anything a plan
cannot express exactly (a class whose fields do not match its descriptor, a pydantic
dataclass, no descriptor found) raises :class:`NoPlan`, and micro.codec uses
betterproto2's own codec for that type.

Unknown fields behave as in betterproto2: kept on each (sub)message in
``_unknown_fields`` when parsing and written back when serializing.

JSON goes the same way: the plan builds the upb message, and protobuf's ``json_format``
writes and reads the proto3 JSON mapping (what protoc's ``_pb2`` messages, grpc-gateway
and ``buf curl`` speak). It reads everything betterproto2's ``to_json`` writes, and is
stricter and more exact than betterproto2's own JSON: 64-bit integers in wrappers are
strings, ``FieldMask`` is a string, bytes wrappers, ``Struct`` and ``Any`` work, and an
unknown field or a value of the wrong type is an error.
"""

from __future__ import annotations

import dataclasses
import importlib
import keyword
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

import betterproto2
from google.protobuf import descriptor_pool, json_format, message_factory, unknown_fields
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message as UpbMessage

from micro.spec import ProtoFile

__all__ = ["NoPlan", "Plan", "plan_for", "register_files"]

_T = FieldDescriptor
# betterproto2's proto_type for each descriptor type (both name the wire type and the
# Python value; groups have no betterproto2 type and make a plan fail)
_BP_TYPE = {
    _T.TYPE_DOUBLE: betterproto2.TYPE_DOUBLE,
    _T.TYPE_FLOAT: betterproto2.TYPE_FLOAT,
    _T.TYPE_INT64: betterproto2.TYPE_INT64,
    _T.TYPE_UINT64: betterproto2.TYPE_UINT64,
    _T.TYPE_INT32: betterproto2.TYPE_INT32,
    _T.TYPE_FIXED64: betterproto2.TYPE_FIXED64,
    _T.TYPE_FIXED32: betterproto2.TYPE_FIXED32,
    _T.TYPE_BOOL: betterproto2.TYPE_BOOL,
    _T.TYPE_STRING: betterproto2.TYPE_STRING,
    _T.TYPE_MESSAGE: betterproto2.TYPE_MESSAGE,
    _T.TYPE_BYTES: betterproto2.TYPE_BYTES,
    _T.TYPE_UINT32: betterproto2.TYPE_UINT32,
    _T.TYPE_ENUM: betterproto2.TYPE_ENUM,
    _T.TYPE_SFIXED32: betterproto2.TYPE_SFIXED32,
    _T.TYPE_SFIXED64: betterproto2.TYPE_SFIXED64,
    _T.TYPE_SINT32: betterproto2.TYPE_SINT32,
    _T.TYPE_SINT64: betterproto2.TYPE_SINT64,
}


class NoPlan(Exception):
    """This message type cannot go through upb exactly; use betterproto2's codec."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one betterproto2 message type goes to bytes and back through upb."""

    cls: type[Any]
    upb: type[UpbMessage]
    to_upb: Callable[[Any], Any]  # dataclass -> constructor kwargs (or a upb message)
    from_upb: Callable[[Any], Any]  # upb message -> dataclass
    fields: dict[int, tuple[str, Plan | None]]  # number -> (attribute, message plan)
    # the wire size of a parsed message, unknown fields included; ByteSize refuses a
    # message that lacks a proto2 required field, so such types serialize to measure
    size: Callable[[Any], int]

    def _upb_message(self, message: Any) -> UpbMessage:
        built = self.to_upb(message)
        if type(built) is dict:
            upb: UpbMessage = self.upb(**built)
            return upb
        upb = built
        return upb

    def encode_json(self, message: Any) -> str:
        try:
            text: str = json_format.MessageToJson(
                self._upb_message(message), indent=None, descriptor_pool=_pool
            )
        except json_format.SerializeToJsonError as exc:  # out of the mapping's range
            raise ValueError(str(exc)) from exc
        return text

    def decode_json(self, text: str | bytes) -> Any:
        parsed = json_format.Parse(text, self.upb(), descriptor_pool=_pool)
        return self.from_upb(parsed)

    def encode(self, message: Any) -> bytes:
        # partial: betterproto2 knows no proto2 `required`, and leaves out a required
        # field that holds its zero value, as it does any other field
        built = self.to_upb(message)
        if type(built) is dict:
            data: bytes = self.upb(**built).SerializePartialToString()
            return data
        data = built.SerializePartialToString()
        return data

    def decode(self, data: bytes) -> Any:
        parsed = self.upb.FromString(data)
        size = self.size(parsed)
        parsed.DiscardUnknownFields()
        if self.size(parsed) == size:
            return self.from_upb(parsed)
        parsed = self.upb.FromString(data)  # the rare case: unknown fields somewhere
        message = self.from_upb(parsed)
        _keep_unknown(self, parsed, message)
        return message


# -- descriptors ------------------------------------------------------------------------

_lock = threading.RLock()
_pool = descriptor_pool.DescriptorPool()
_added: dict[str, bytes] = {}  # file name -> its descriptor, as added to _pool
_files: dict[str, ProtoFile] = {}  # file name -> file, from every source seen
_symbols: dict[str, str] = {}  # full proto name -> file name
_scanned: set[str] = set()  # generated modules whose _FILES were read
_plans: dict[type[Any], Plan] = {}


def register_files(files: Iterable[ProtoFile]) -> None:
    """Make compiled .proto files known to the codec (generated modules' ``_FILES`` are
    found on their own once imported)."""
    with _lock:
        for file in files:
            if file.name not in _files:
                _files[file.name] = file
                for symbol in file.symbols:
                    _symbols.setdefault(symbol, file.name)


def _scan_modules() -> None:
    """Read ``_FILES`` of generated micro modules (``*_micro``) imported since last time."""
    for name, module in list(sys.modules.items()):
        if name in _scanned or not name.endswith("_micro"):
            continue
        _scanned.add(name)
        files = getattr(module, "__dict__", {}).get("_FILES")
        if isinstance(files, tuple) and all(isinstance(f, ProtoFile) for f in files):
            register_files(files)


def _bundled(name: str) -> bytes | None:
    """A well-known type's file as protobuf ships it (``google/protobuf/*.proto``)."""
    if not name.startswith("google/protobuf/") or not name.endswith(".proto"):
        return None
    stem = name[len("google/protobuf/") : -len(".proto")]
    if "/" in stem:
        return None
    try:
        module = importlib.import_module(f"google.protobuf.{stem}_pb2")
    except ImportError:
        return None
    data: bytes = module.DESCRIPTOR.serialized_pb
    return data


def _add(name: str) -> None:
    """Add file ``name`` and its dependencies to the pool, dependencies first."""
    if name in _added:
        return
    file = _files.get(name)
    data = file.descriptor if file is not None else _bundled(name)
    if data is None:
        raise NoPlan(f"no descriptor for {name}")
    for dependency in file.dependencies if file is not None else ():
        _add(dependency)
    try:
        _pool.AddSerializedFile(data)
    except Exception as exc:  # a conflicting file of the same name, or a broken one
        raise NoPlan(f"{name}: {exc}") from exc
    _added[name] = data


def _import_siblings(cls: type[Any]) -> None:
    """Import the generated micro modules next to ``cls``'s module (``*_micro.py`` in its
    package), which embed the compiled files of the messages beside them."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if module is None or path is None:
        return
    package = module.__name__ if hasattr(module, "__path__") else module.__package__
    folder = os.path.dirname(path)
    try:
        names = sorted(n[:-3] for n in os.listdir(folder) if n.endswith("_micro.py"))
    except OSError:
        return
    for name in names:
        try:
            importlib.import_module(f"{package}.{name}" if package else name)
        except Exception:  # not importable here: the type falls back, nothing breaks
            continue


def _descriptor(cls: type[Any], full_name: str) -> Descriptor:
    if full_name not in _symbols:
        _scan_modules()
    if full_name not in _symbols:
        _import_siblings(cls)
        _scan_modules()
    file = _symbols.get(full_name)
    if file is None:
        package = full_name.rpartition(".")[0]
        if package != "google.protobuf":
            raise NoPlan(f"no compiled .proto defines {full_name}")
        try:
            return _pool.FindMessageTypeByName(full_name)
        except KeyError:
            for stem in ("any", "duration", "empty", "field_mask", "struct", "timestamp"):
                _add(f"google/protobuf/{stem}.proto")
            _add("google/protobuf/wrappers.proto")
    else:
        _add(file)
    try:
        return _pool.FindMessageTypeByName(full_name)
    except KeyError as exc:
        raise NoPlan(f"{full_name} is not in its compiled .proto") from exc


def _full_name(cls: type[Any]) -> str:
    module = sys.modules.get(cls.__module__)
    registry = getattr(module, "default_message_pool", None)
    url = getattr(registry, "type_to_url", {}).get(cls)
    if not isinstance(url, str):
        raise NoPlan(f"{cls.__qualname__} is in no betterproto2 message pool")
    return url.rpartition("/")[2].lstrip(".")  # a file without a package: ".Name"


# -- plans ------------------------------------------------------------------------------


def plan_for(cls: type[Any]) -> Plan:
    """The plan of betterproto2 message class ``cls``; raises :class:`NoPlan`."""
    plan = _plans.get(cls)
    if plan is not None:
        return plan
    with _lock:
        plan = _plans.get(cls)
        if plan is None:
            plan = _Builder().build(cls)
    return plan


class _Builder:
    """Generates the conversion functions of a class and of every message type it reaches
    (all or none of them are kept, so a failure leaves no half-built plan behind)."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_new": object.__new__}
        self.source: list[str] = []
        self.pending: list[tuple[type[Any], Descriptor, str]] = []
        self.ids: dict[type[Any], str] = {}
        self.built: dict[type[Any], Plan] = {}

    def name_of(self, cls: type[Any], descriptor: Descriptor) -> str:
        """The suffix of ``cls``'s functions (``_e<n>``, ``_d<n>``), queued on first use."""
        if cls not in self.ids and cls in _plans:
            ident = f"p{len(self.namespace)}"
            self.namespace[f"_e{ident}"] = _plans[cls].to_upb
            self.namespace[f"_d{ident}"] = _plans[cls].from_upb
            self.ids[cls] = ident
        elif cls not in self.ids:
            if descriptor.full_name != _full_name(cls):
                raise NoPlan(f"{cls.__qualname__} is not {descriptor.full_name}")
            self.ids[cls] = str(len(self.ids))
            self.pending.append((cls, descriptor, self.ids[cls]))
        return self.ids[cls]

    def const(self, value: Any) -> str:
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def build(self, root: type[Any]) -> Plan:
        self.name_of(root, _descriptor(root, _full_name(root)))
        done: list[tuple[type[Any], Descriptor, str, dict[int, tuple[str, type[Any] | None]]]]
        done = []
        while self.pending:
            cls, descriptor, ident = self.pending.pop()
            done.append((cls, descriptor, ident, self.emit(cls, descriptor, ident)))
        try:
            exec("\n".join(self.source), self.namespace)
        except SyntaxError as exc:  # pragma: no cover - a bug in emit
            raise NoPlan(f"generated code: {exc}") from exc
        for cls, descriptor, ident, _ in done:
            upb = message_factory.GetMessageClass(descriptor)
            self.namespace[f"_u{ident}"] = upb
            size = _partial_size if _requires(descriptor, set()) else upb.ByteSize
            self.built[cls] = Plan(
                cls, upb, self.namespace[f"_e{ident}"], self.namespace[f"_d{ident}"], {}, size
            )
        for cls, _, _, fields in done:
            plan = self.built[cls]
            for number, (attr, sub) in fields.items():
                plan.fields[number] = (attr, None if sub is None else self.plan_of(sub))
        _plans.update(self.built)
        return self.built[root] if root in self.built else _plans[root]

    def plan_of(self, cls: type[Any]) -> Plan:
        return self.built[cls] if cls in self.built else _plans[cls]

    def emit(
        self, cls: type[Any], descriptor: Descriptor, ident: str
    ) -> dict[int, tuple[str, type[Any] | None]]:
        """Source of ``_e<ident>`` (dataclass -> kwargs) and ``_d<ident>`` (upb -> dataclass)."""
        if not (isinstance(cls, type) and issubclass(cls, betterproto2.Message)):
            raise NoPlan(f"{cls!r} is not a betterproto2 message")
        if not dataclasses.is_dataclass(cls) or "__pydantic_fields__" in cls.__dict__:
            raise NoPlan(f"{cls.__qualname__}: only plain dataclasses")
        meta = cls._betterproto
        names = {f.name for f in dataclasses.fields(cls)}
        by_number = {m.number: name for name, m in meta.meta_by_field_name.items()}
        if set(by_number) != {f.number for f in descriptor.fields} or len(names) != len(by_number):
            raise NoPlan(f"{cls.__qualname__}: fields differ from {descriptor.full_name}")
        enc = [f"def _e{ident}(o):", "    k = {}"]
        dec = [f"def _d{ident}(m):", f"    o = _new({self.const(cls)})", "    d = o.__dict__"]
        oneofs: set[str] = set()
        reached: dict[int, tuple[str, type[Any] | None]] = {}
        for fd in descriptor.fields:
            attr = by_number[fd.number]
            if not attr.isidentifier() or keyword.iskeyword(attr):
                raise NoPlan(f"{cls.__qualname__}.{attr}: not an identifier")
            m = meta.meta_by_field_name[attr]
            oneof = fd.containing_oneof
            real_oneof = oneof is not None and not _synthetic(fd)
            if real_oneof:
                assert oneof is not None
                if oneof.name not in oneofs:
                    oneofs.add(oneof.name)
                    dec.append(f"    w_{oneof.name} = m.WhichOneof({oneof.name!r})")
            e, d, sub = self.field(cls, attr, m, fd)
            reached[fd.number] = (attr, sub)
            enc += [f"    v = o.{attr}", *e]
            if real_oneof:
                assert oneof is not None
                dec.append(f"    d[{attr!r}] = ({d}) if w_{oneof.name} == {fd.name!r} else None")
            elif fd.type == _T.TYPE_MESSAGE and not _repeated(fd):
                dec.append(f"    d[{attr!r}] = ({d}) if m.HasField({fd.name!r}) else None")
            elif m.optional and not _repeated(fd):
                dec.append(f"    d[{attr!r}] = ({d}) if m.HasField({fd.name!r}) else None")
            elif fd.has_presence and not _repeated(fd):
                # proto2 or editions explicit presence that betterproto2 reads as implicit:
                # unset is betterproto2's zero value, never the descriptor's [default = ...]
                zero = self.const(meta.default_gen[attr]())
                dec.append(f"    d[{attr!r}] = ({d}) if m.HasField({fd.name!r}) else {zero}")
            else:
                dec.append(f"    d[{attr!r}] = {d}")
        enc += [
            "    u = o._unknown_fields",
            "    if u:",
            f"        b = _u{ident}(**k)",
            "        b.MergeFromString(u)",
            "        return b",
            # upb reads a dict given for a Struct, Value or ListValue as its JSON-like
            # content, not as constructor arguments: well-known types go as messages
            f"    return _u{ident}(**k)" if _well_known(descriptor) else "    return k",
        ]
        dec += ["    d['_unknown_fields'] = b''", "    return o"]
        self.source += [*enc, "", *dec, ""]
        return reached

    def field(
        self, cls: type[Any], attr: str, m: betterproto2.FieldMetadata, fd: FieldDescriptor
    ) -> tuple[list[str], str, type[Any] | None]:
        """Encode lines (the value in ``v``), decode expression, and the message class
        reached. upb's constructor takes any field name as a keyword; reading one that is
        no identifier goes through getattr."""
        name = fd.name
        where = f"{cls.__qualname__}.{attr}"
        plain = name.isidentifier() and not keyword.iskeyword(name)
        get = f"m.{name}" if plain else f"getattr(m, {name!r})"
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if m.proto_type != betterproto2.TYPE_MAP or m.map_meta is None:
                raise NoPlan(f"{where}: a map in the descriptor")
            kfd = fd.message_type.fields_by_name["key"]
            vfd = fd.message_type.fields_by_name["value"]
            key_meta, value_meta = m.map_meta
            if key_meta.proto_type != _BP_TYPE.get(kfd.type):
                raise NoPlan(f"{where}: map key type")
            value_cls = cls._betterproto.cls_by_field[f"{attr}.value"]
            ve, vd, sub = self.single(where, value_meta, vfd, value_cls)
            if ve == vd == "@":
                return [f"    if v: k[{name!r}] = v"], f"dict({get})", None
            ve, vd = ve.replace("@", "x"), vd.replace("@", "x")
            return (
                [f"    if v: k[{name!r}] = {{y: {ve} for y, x in v.items()}}"],
                f"{{y: {vd} for y, x in {get}.items()}}",
                sub,
            )
        repeated = _repeated(fd)
        if m.proto_type == betterproto2.TYPE_MAP or bool(m.repeated) != repeated:
            raise NoPlan(f"{where}: cardinality differs from the descriptor")
        element = cls._betterproto.cls_by_field[attr]
        e, d, sub = self.single(where, m, fd, element)
        if repeated:
            enc = f"    if v: k[{name!r}] = " + (
                "v" if e == "@" else f"[{e.replace('@', 'x')} for x in v]"
            )
            dec = f"list({get})" if d == "@" else f"[{d.replace('@', 'x')} for x in {get}]"
            return [enc], dec, sub
        if fd.type == _T.TYPE_MESSAGE or m.optional or m.group:
            test = "v is not None"
        else:
            test = "v"  # proto3 defaults are not written (as betterproto2 does)
        return [f"    if {test}: k[{name!r}] = {e.replace('@', 'v')}"], d.replace("@", get), sub

    def single(
        self, where: str, m: betterproto2.FieldMetadata, fd: FieldDescriptor, element: Any
    ) -> tuple[str, str, type[Any] | None]:
        """One value: its encode and decode expressions over ``@``."""
        if m.proto_type != _BP_TYPE.get(fd.type):
            raise NoPlan(f"{where}: {m.proto_type} is type {fd.type} in the descriptor")
        if fd.type == _T.TYPE_ENUM:
            if not (isinstance(element, type) and issubclass(element, betterproto2.Enum)):
                raise NoPlan(f"{where}: enum class")
            known = self.const({member.value: member for member in element})
            enum = self.const(element)
            return "@", f"({known}.get(@) or {enum}(@))", None
        if fd.type != _T.TYPE_MESSAGE:
            return "@", "@", None
        assert fd.message_type is not None
        if m.unwrap is not None:
            wkt = m.unwrap()
            ident = self.name_of(wkt, fd.message_type)
            wrapper = self.const(wkt)
            return f"_e{ident}({wrapper}.from_wrapped(@))", f"_d{ident}(@).to_wrapped()", None
        ident = self.name_of(element, fd.message_type)
        return f"_e{ident}(@)", f"_d{ident}(@)", element


def _partial_size(message: Any) -> int:
    return len(message.SerializePartialToString())


def _requires(descriptor: Descriptor, seen: set[str]) -> bool:
    """A proto2 ``required`` field in ``descriptor`` or any message type it reaches."""
    if descriptor.full_name in seen:
        return False
    seen.add(descriptor.full_name)
    for fd in descriptor.fields:
        required = getattr(fd, "is_required", None)
        if required if required is not None else getattr(fd, "label", 0) == 2:  # REQUIRED
            return True
        if fd.message_type is not None and _requires(fd.message_type, seen):
            return True
    return False


def _well_known(descriptor: Descriptor) -> bool:
    return bool(descriptor.file.package == "google.protobuf")


def _repeated(fd: FieldDescriptor) -> bool:
    repeated = getattr(fd, "is_repeated", None)  # protobuf 6.31 and later
    if repeated is None:
        return bool(getattr(fd, "label", 0) == 3)  # LABEL_REPEATED, before
    return bool(repeated)


def _synthetic(fd: FieldDescriptor) -> bool:
    """The field is alone in the synthetic oneof of a proto3 ``optional``."""
    oneof = fd.containing_oneof
    if oneof is None:
        return False
    synthetic = getattr(oneof, "is_synthetic", None)
    if synthetic is not None:
        return bool(synthetic() if callable(synthetic) else synthetic)
    return len(oneof.fields) == 1 and oneof.name == f"_{fd.name}"


# -- unknown fields ---------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _unknown_bytes(fields: Any) -> bytes:
    """Unknown fields (protobuf's ``UnknownFieldSet``) back as wire bytes."""
    out = bytearray()
    for field in fields:
        number, wire, data = field.field_number, field.wire_type, field.data
        out += _varint(number << 3 | wire)
        if wire == 0:
            out += _varint(data)
        elif wire == 1:
            out += (data & ((1 << 64) - 1)).to_bytes(8, "little")
        elif wire == 2:
            out += _varint(len(data)) + data
        elif wire == 5:
            out += (data & ((1 << 32) - 1)).to_bytes(4, "little")
        elif wire == 3:  # a group: its fields, then the end tag
            out += _unknown_bytes(data) + _varint(number << 3 | 4)
    return bytes(out)


def _keep_unknown(plan: Plan, parsed: Any, message: Any) -> None:
    """Copy ``parsed``'s unknown fields, at every depth, onto ``message``'s tree."""
    found = unknown_fields.UnknownFieldSet(parsed)
    if len(found):
        message._unknown_fields = _unknown_bytes(found)
    for fd, value in parsed.ListFields():
        attr, sub = plan.fields.get(fd.number, ("", None))
        if sub is None:
            continue  # not a message, or a well-known type betterproto2 unwraps
        mine = getattr(message, attr)
        if fd.message_type.GetOptions().map_entry:
            for key, item in value.items():
                _keep_unknown(sub, item, mine[key])
        elif _repeated(fd):
            for item, ours in zip(value, mine, strict=True):
                _keep_unknown(sub, item, ours)
        else:
            _keep_unknown(sub, value, mine)
