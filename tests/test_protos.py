"""The protos' annotations say what their comments say: `Required.` fields are REQUIRED,
`Output only.` fields OUTPUT_ONLY (google.api.field_behavior), deprecated fields say what
replaces them. Read from the descriptor set with comments that reflection serves."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib import resources

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

REQUIRED = field_behavior_pb2.REQUIRED
OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY


def _walk(
    msgs: Sequence[descriptor_pb2.DescriptorProto],
    path: tuple[int, ...],
    prefix: str,
    comments: dict[tuple[int, ...], str],
) -> Iterator[tuple[str, descriptor_pb2.FieldDescriptorProto, str]]:
    for i, m in enumerate(msgs):
        here = (*path, i)
        for j, field in enumerate(m.field):
            yield f"{prefix}{m.name}.{field.name}", field, comments.get((*here, 2, j), "")
        yield from _walk(m.nested_type, (*here, 3), f"{prefix}{m.name}.", comments)


def _fields() -> Iterator[tuple[str, descriptor_pb2.FieldDescriptorProto, str]]:
    data = resources.files("plansmith.v1").joinpath("plansmith_v1.binpb").read_bytes()
    for f in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        comments = {tuple(loc.path): loc.leading_comments for loc in f.source_code_info.location}
        yield from _walk(f.message_type, (4,), "", comments)


FIELDS = list(_fields())


def _behaviors(field: descriptor_pb2.FieldDescriptorProto) -> list[int]:
    return list(field.options.Extensions[field_behavior_pb2.field_behavior])


def test_the_descriptor_set_has_comments():
    assert len(FIELDS) > 200 and sum(1 for *_, c in FIELDS if c) > 200


def test_required_fields_are_annotated_required():
    wrong = [
        name
        for name, field, comment in FIELDS
        if comment.strip().startswith("Required.") != (REQUIRED in _behaviors(field))
    ]
    assert not wrong, wrong


def test_output_only_fields_are_annotated_output_only():
    wrong = [
        name
        for name, field, comment in FIELDS
        if comment.strip().startswith("Output only.") != (OUTPUT_ONLY in _behaviors(field))
    ]
    assert not wrong, wrong


def test_deprecated_fields_name_what_replaces_them():
    deprecated = {n: c for n, f, c in FIELDS if f.options.deprecated}
    assert set(deprecated) >= {"SolverStats.solver", "EstimateTaskDurationResponse.method"}
    for name, comment in deprecated.items():
        assert comment.strip().startswith("Deprecated: read `"), name
