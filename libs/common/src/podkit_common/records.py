"""Small value classes without ``dataclasses``: ``@record`` and ``@record(frozen=True)``.

Why not dataclasses: importing ``dataclasses`` pulls in ``inspect``, ``ast``, ``dis`` and
``tokenize``, and every ``@dataclass`` compiles its generated methods with ``exec`` when
the module is imported. On the hot path of ``pod run`` that was ~25 ms of a ~330 ms
command, paid on every start. A record reads its fields from the class annotations
(strings, under ``from __future__ import annotations``) and shares generic methods.

The subset podkit uses, with dataclass semantics: fields in annotation order (inherited
fields first), defaults, ``field(default=..., default_factory=..., repr=..., compare=...)``,
positional or keyword construction, ``__post_init__``, ``__eq__``, ``__repr__``, frozen
instances (hashable, ``FrozenInstanceError`` on assignment) and ``replace()``.
``ClassVar`` annotations are not fields.
"""

from __future__ import annotations

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    __slots__ = ("compare", "default", "default_factory", "name", "repr")

    def __init__(self, default: object = _MISSING, default_factory: object = _MISSING,
                 repr: bool = True, compare: bool = True) -> None:
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare


def field(*, default: object = _MISSING, default_factory: object = _MISSING,
          repr: bool = True, compare: bool = True) -> object:
    """A field with options, as ``dataclasses.field`` (default, default_factory, repr,
    compare)."""
    return Field(default, default_factory, repr, compare)


def _init(self: object, *args: object, **kwargs: object) -> None:
    fields = type(self).__record_fields__  # type: ignore[attr-defined]
    if len(args) > len(fields):
        raise TypeError(f"{type(self).__name__}() takes {len(fields)} positional arguments "
                        f"but {len(args)} were given")
    put = object.__setattr__
    for i, f in enumerate(fields):
        name = f.name
        if i < len(args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__}() got multiple values for "
                                f"argument {name!r}")
            value = args[i]
        elif name in kwargs:
            value = kwargs.pop(name)
        elif f.default is not _MISSING:
            value = f.default
        elif f.default_factory is not _MISSING:
            value = f.default_factory()  # type: ignore[operator]
        else:
            raise TypeError(f"{type(self).__name__}() missing required argument {name!r}")
        put(self, name, value)
    if kwargs:
        raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument "
                        f"{next(iter(kwargs))!r}")
    post = getattr(self, "__post_init__", None)
    if post is not None:
        post()


def _values(self: object) -> tuple[object, ...]:
    return tuple(getattr(self, f.name) for f in type(self).__record_fields__  # type: ignore[attr-defined]
                 if f.compare)


def _eq(self: object, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: object) -> int:
    return hash(_values(self))


def _repr(self: object) -> str:
    parts = ", ".join(f"{f.name}={getattr(self, f.name)!r}"
                      for f in type(self).__record_fields__  # type: ignore[attr-defined]
                      if f.repr)
    return f"{type(self).__qualname__}({parts})"


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _make(cls: type, frozen: bool) -> type:
    fields: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in getattr(base, "__record_fields__", ()):
            fields[f.name] = f
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063 (inspect is what we avoid)
        if isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        if isinstance(value, Field):
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        fields[name] = f
    ordered = tuple(fields.values())
    seen_default = False
    for f in ordered:
        has_default = f.default is not _MISSING or f.default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        seen_default = seen_default or has_default
    cls.__record_fields__ = ordered  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(f.name for f in ordered)  # type: ignore[attr-defined]
    if "__init__" not in cls.__dict__:
        cls.__init__ = _init  # type: ignore[misc]
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _repr  # type: ignore[assignment,method-assign]
    if "__eq__" not in cls.__dict__:
        cls.__eq__ = _eq  # type: ignore[assignment,method-assign]
    if frozen:
        cls.__hash__ = _hash  # type: ignore[assignment,method-assign]
        cls.__setattr__ = _frozen_setattr  # type: ignore[assignment,method-assign]
        cls.__delattr__ = _frozen_delattr  # type: ignore[assignment,method-assign]
    elif "__hash__" not in cls.__dict__:
        cls.__hash__ = None  # type: ignore[assignment]
    return cls


def record(cls: type | None = None, /, *, frozen: bool = False):  # type: ignore[no-untyped-def]
    """Class decorator: ``@record`` or ``@record(frozen=True)``."""
    if cls is not None:
        return _make(cls, frozen)
    return lambda c: _make(c, frozen)


def replace(obj: object, /, **changes: object) -> object:
    """A copy of a record with some fields changed (``dataclasses.replace``)."""
    values = {f.name: getattr(obj, f.name) for f in type(obj).__record_fields__}  # type: ignore[attr-defined]
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s) {', '.join(sorted(unknown))}")
    values.update(changes)
    return type(obj)(**values)


def fields(obj_or_cls: object) -> tuple[Field, ...]:
    """The fields of a record class or instance, in order."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    return cls.__record_fields__  # type: ignore[attr-defined,no-any-return]
