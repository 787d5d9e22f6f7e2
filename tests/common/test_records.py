"""podkit_common.records: the dataclass subset podkit uses, without importing dataclasses."""

from __future__ import annotations

import subprocess
import sys
from typing import ClassVar

import pytest

from podkit_common.records import FrozenInstanceError, field, fields, record, replace


@record(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    secret: str = field(default="", repr=False, compare=False)
    KIND: ClassVar[str] = "point"


@record
class Box:
    width: int = 1
    items: dict[str, int] = field(default_factory=dict)

    def area(self) -> int:
        return self.width * self.width


@record(frozen=True)
class Point3(Point):
    z: int = 0


def test_construction_defaults_and_factories() -> None:
    p = Point(1)
    assert (p.x, p.y, p.tags, p.secret) == (1, 0, (), "")
    assert Point(1, 2).y == 2 and Point(x=1, y=3).y == 3
    assert Box().items is not Box().items
    assert [f.name for f in fields(Point)] == ["x", "y", "tags", "secret"]
    assert Point.KIND == "point"


def test_bad_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match="missing required argument 'x'"):
        Point()
    with pytest.raises(TypeError, match="unexpected keyword argument 'w'"):
        Point(1, w=2)
    with pytest.raises(TypeError, match="multiple values"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="positional"):
        Box(1, {}, 3)
    with pytest.raises(TypeError, match="non-default argument"):
        @record
        class Bad:
            a: int = 1
            b: int


def test_eq_hash_repr_frozen() -> None:
    assert Point(1, 2) == Point(1, 2, secret="other")
    assert Point(1, 2) != Point(1, 3) and Point(1) != Box()
    assert hash(Point(1, 2, ())) == hash(Point(1, 2))
    assert len({Point(1), Point(1), Point(2)}) == 2
    assert repr(Point(1, secret="pw")) == "Point(x=1, y=0, tags=())"
    with pytest.raises(FrozenInstanceError):
        Point(1).x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del Point(1).y
    b = Box()
    b.width = 3
    assert b.area() == 9 and Box.__hash__ is None


def test_replace_and_inheritance() -> None:
    p = Point(1, 2, ("t",))
    q = replace(p, y=5)
    assert (q.x, q.y, q.tags) == (1, 5, ("t",)) and p.y == 2
    with pytest.raises(TypeError, match="no field"):
        replace(p, w=1)
    r = Point3(1, 2, z=3)
    assert [f.name for f in fields(r)] == ["x", "y", "tags", "secret", "z"]
    assert replace(r, x=9) == Point3(9, 2, z=3)


def test_post_init_runs() -> None:
    seen = []

    @record
    class WithPost:
        a: int = 0

        def __post_init__(self) -> None:
            seen.append(self.a)

    WithPost(4)
    assert seen == [4]


def test_importing_records_does_not_import_dataclasses() -> None:
    code = "import sys, podkit_common.records; print('dataclasses' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
