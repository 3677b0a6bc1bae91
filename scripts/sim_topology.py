"""Seeded graph generators for the network simulator (no networkx on this machine).

* ``geometric``: random geometric graph in the unit square, radius for a mean degree of ~4,
  then every stray component joined to its nearest node of the main one (neighbourhoods).
* ``smallworld``: Watts-Strogatz ring, each node linked to its 4 nearest, 10 % rewired.
* ``city``: 30 dense clusters (link probability 0.5 inside), a ring of bridges between
  consecutive clusters plus a few random bridges.

A graph is ``dict[int, set[int]]`` (undirected). Everything takes an explicit ``random.Random``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque

Graph = dict[int, set[int]]
TOPOLOGIES = ("geometric", "smallworld", "city")


def _link(graph: Graph, a: int, b: int) -> None:
    if a != b:
        graph[a].add(b)
        graph[b].add(a)


def components(graph: Graph) -> list[set[int]]:
    """The connected components, largest first."""
    seen: set[int] = set()
    found: list[set[int]] = []
    for start in sorted(graph):
        if start in seen:
            continue
        part = set(within(graph, start, len(graph)))
        seen |= part
        found.append(part)
    return sorted(found, key=len, reverse=True)


def geometric(n: int, rng: random.Random, degree: float = 4.0) -> Graph:
    """Random geometric graph, joined into one component."""
    points = [(rng.random(), rng.random()) for _ in range(n)]
    radius = math.sqrt(degree / (math.pi * max(n, 1)))
    graph: Graph = {i: set() for i in range(n)}
    for i in range(n):
        for j in range(i + 1, n):
            if math.dist(points[i], points[j]) <= radius:
                _link(graph, i, j)
    parts = components(graph)
    main = parts[0]
    for part in parts[1:]:
        a, b = min(((a, b) for a in part for b in main),
                   key=lambda pair: math.dist(points[pair[0]], points[pair[1]]))
        _link(graph, a, b)
        main |= part
    return graph


def smallworld(n: int, rng: random.Random, k: int = 4, p: float = 0.1) -> Graph:
    """Watts-Strogatz small world (ring lattice of degree ``k``, each edge rewired with ``p``)."""
    graph: Graph = {i: set() for i in range(n)}
    for i in range(n):
        for step in range(1, k // 2 + 1):
            j = (i + step) % n
            if rng.random() < p:
                j = rng.randrange(n)
                while j == i or j in graph[i]:
                    j = rng.randrange(n)
            _link(graph, i, j)
    return graph


def city(n: int, rng: random.Random, clusters: int = 30, inside: float = 0.5) -> Graph:
    """Dense clusters joined by bridges (one between consecutive clusters, plus n/30 more)."""
    count = max(1, min(clusters, n // 3))
    groups = [list(range(n))[c::count] for c in range(count)]
    graph: Graph = {i: set() for i in range(n)}
    for members in groups:
        for x, a in enumerate(members):
            for b in members[x + 1:]:
                if rng.random() < inside:
                    _link(graph, a, b)
        for a, b in itertools.pairwise(members):  # each cluster connected
            _link(graph, a, b)
    for c in range(count if count > 2 else count - 1):  # a ring of bridges
        _link(graph, rng.choice(groups[c]), rng.choice(groups[(c + 1) % count]))
    for _ in range(n // 30):
        c, d = rng.sample(range(count), 2) if count > 1 else (0, 0)
        _link(graph, rng.choice(groups[c]), rng.choice(groups[d]))
    return graph


def build(kind: str, n: int, rng: random.Random) -> Graph:
    """The graph of one topology name."""
    if kind == "geometric":
        return geometric(n, rng)
    if kind == "smallworld":
        return smallworld(n, rng)
    if kind == "city":
        return city(n, rng)
    raise ValueError(f"unknown topology {kind!r}; one of {TOPOLOGIES}")


def within(graph: Graph, start: int, radius: int) -> dict[int, int]:
    """Breadth-first distances from ``start`` up to ``radius`` hops."""
    dist = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if dist[node] == radius:
            continue
        for other in graph[node]:
            if other not in dist:
                dist[other] = dist[node] + 1
                queue.append(other)
    return dist


def edges_among(graph: Graph, nodes: set[int]) -> int:
    """Edges with both ends in ``nodes``."""
    return sum(1 for a in nodes for b in graph[a] if b in nodes and a < b)


def edge_count(graph: Graph) -> int:
    """Undirected edges of the graph."""
    return sum(len(others) for others in graph.values()) // 2
