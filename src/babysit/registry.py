"""One small registry type for every plug-in family (finding rules, fixes, checklist checks,
augment ops, optimizers, schedules, activations, penalties): a taken name is refused, and an
unknown name is echoed with the valid ones (Keras' style). Items come back in an explicit order:
`order` when given (rules and checks, whose order users read), else registration order."""
from __future__ import annotations

from typing import Generic, Iterator, Optional, TypeVar

from babysit.errors import UnknownName

T = TypeVar("T")
LAST = 1_000_000.0  # the default order: after every shipped item


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # "finding rule", "optimizer", ...: named in the errors
        self._items: dict[str, tuple[tuple[float, int], T]] = {}

    def register(self, name: str, item: Optional[T] = None, *, order: float = LAST):
        """Register `item` under `name`; without `item`, a decorator."""
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = ((order, len(self._items)), obj)
            return obj
        return add if item is None else add(item)

    def unregister(self, name: str) -> T:
        return self._items.pop(name)[1]

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            raise UnknownName(f"unknown {self.kind} {name!r}; valid: {', '.join(self)}")
        return self._items[name][1]

    def __contains__(self, name) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items, key=lambda n: self._items[n][0]))

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name][1]) for name in self]

    def check(self, names, what: str) -> list[str]:
        """`names` as a list, each a registered name (else an error that names `what`)."""
        unknown = [n for n in names if n not in self._items]
        if unknown:
            raise UnknownName(f"{what}: unknown {self.kind} {', '.join(map(repr, unknown))}; valid: {', '.join(self)}")
        return list(names)
