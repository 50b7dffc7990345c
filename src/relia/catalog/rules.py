"""Pure catalog rules."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Set
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)
_DONE = object()


def find_cycle(edges: Mapping[Node, Set[Node]], *, start: Node | None = None) -> list[Node] | None:
    """Return one cycle (as the list of nodes on it, in order) in a directed graph, or None.

    With ``start``, only cycles through ``start``'s reachable part are looked for.
    """
    white, grey, black = 0, 1, 2
    colour: dict[Node, int] = {}

    def visit(root: Node) -> list[Node] | None:
        # Iterative depth-first search: dependency chains can be longer than Python's recursion limit.
        path: list[Node] = [root]
        pending = [iter(sorted(edges.get(root, ()), key=repr))]
        colour[root] = grey
        while pending:
            successor = next(pending[-1], _DONE)
            if successor is _DONE:
                colour[path.pop()] = black
                pending.pop()
                continue
            state = colour.get(successor, white)
            if state == grey:
                return path[path.index(successor) :]
            if state == white:
                colour[successor] = grey
                path.append(successor)
                pending.append(iter(sorted(edges.get(successor, ()), key=repr)))
        return None

    roots = [start] if start is not None else sorted(edges, key=repr)
    for root in roots:
        if colour.get(root, white) == white:
            found = visit(root)
            if found:
                return found
    return None
