"""protoc-gen-micro: typed micro clients and server skeletons from .proto services."""

__version__ = "0.1.0"
