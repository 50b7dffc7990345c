"""Pure catalog rules."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Set
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)


def find_cycle(edges: Mapping[Node, Set[Node]], *, start: Node | None = None) -> list[Node] | None:
    """Return one cycle (as the list of nodes on it, in order) in a directed graph, or None.

    With ``start``, only cycles through ``start``'s reachable part are looked for.
    """
    white, grey, black = 0, 1, 2
    colour: dict[Node, int] = {}
    stack_path: list[Node] = []

    def visit(node: Node) -> list[Node] | None:
        colour[node] = grey
        stack_path.append(node)
        for successor in sorted(edges.get(node, ()), key=repr):
            state = colour.get(successor, white)
            if state == grey:
                return stack_path[stack_path.index(successor) :]
            if state == white:
                found = visit(successor)
                if found:
                    return found
        stack_path.pop()
        colour[node] = black
        return None

    roots = [start] if start is not None else sorted(edges, key=repr)
    for root in roots:
        if colour.get(root, white) == white:
            found = visit(root)
            if found:
                return found
    return None
