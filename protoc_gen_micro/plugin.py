"""The protoc plugin: read request -> model -> render -> format -> response.

Debugging: set MICRO_DUMP_REQUEST=path to save the CodeGeneratorRequest protoc
sends; replay it with `protoc-gen-micro < path`.
"""

from __future__ import annotations

import os
import sys

from google.protobuf.compiler.plugin_pb2 import CodeGeneratorRequest, CodeGeneratorResponse
from google.protobuf.descriptor_pb2 import Edition
from google.protobuf.message import DecodeError

from .model import Model, ModelError, build_model
from .options import OptionError, parse_options
from .render import render_file

FEATURES = (
    CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL | CodeGeneratorResponse.FEATURE_SUPPORTS_EDITIONS
)


def generate(request: CodeGeneratorRequest) -> CodeGeneratorResponse:
    response = CodeGeneratorResponse(
        supported_features=FEATURES,
        minimum_edition=Edition.EDITION_PROTO2,
        maximum_edition=Edition.EDITION_2024,
    )
    try:
        model = request_model(request)
    except (OptionError, ModelError) as exc:
        response.error = str(exc)
        return response
    for file in model.files:
        response.file.add(name=file.output, content=render_file(file))
    for init in model.package_inits:
        response.file.add(name=init, content="")
    return response


def request_model(request: CodeGeneratorRequest) -> Model:
    """What `request` asks to generate; OptionError or ModelError if it cannot be."""
    return build_model(request, parse_options(request.parameter))


def read_request(data: bytes) -> CodeGeneratorRequest:
    if not data:
        raise ValueError("no CodeGeneratorRequest on stdin (run me through protoc --micro_out=DIR)")
    try:
        request = CodeGeneratorRequest.FromString(data)
    except DecodeError as exc:
        raise ValueError(f"stdin is not a CodeGeneratorRequest ({exc})") from None
    if not request.file_to_generate:
        raise ValueError("the CodeGeneratorRequest on stdin names no file to generate")
    return request


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from importlib.metadata import version

        print(f"protoc-gen-micro {version('protoc-gen-micro')}")
        return
    if sys.stdin.isatty():
        sys.exit("protoc-gen-micro: this is a protoc plugin; run protoc --micro_out=DIR ...")
    data = sys.stdin.buffer.read()
    dump = os.environ.get("MICRO_DUMP_REQUEST")
    if dump:
        with open(dump, "wb") as fh:
            fh.write(data)
    try:
        request = read_request(data)
    except ValueError as exc:
        sys.exit(f"protoc-gen-micro: {exc}")
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
