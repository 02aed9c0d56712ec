"""Comments from SourceCodeInfo, indexed once per file by location path."""

from __future__ import annotations

from google.protobuf.descriptor_pb2 import FileDescriptorProto


class CommentIndex:
    """The comments of the locations under one top-level field (messages take most of a
    file's locations, and only services' comments are rendered)."""

    def __init__(self, file: FileDescriptorProto, under: int) -> None:
        self._comments: dict[tuple[int, ...], str] = {}
        for location in file.source_code_info.location:
            path = location.path
            if not path or path[0] != under:
                continue
            text = location.leading_comments or location.trailing_comments
            if text.strip():
                self._comments[tuple(path)] = text

    def get(self, *path: int) -> str:
        return clean_comment(self._comments.get(path, ""))


def clean_comment(text: str) -> str:
    """Dedent a proto comment and drop blank edges; keeps the author's line breaks."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    indents = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in lines)
