#!/usr/bin/env python3
"""No import cycles between sibling modules (docs/architecture.md, "What may import what").

Every `crate::…` and `super::…` path in the library's non-test code is resolved to the
module it names. A path from module A to module B makes an edge between the two siblings
that contain them under their closest common parent (src/copy/engine.rs naming
copy::segment::Flow is the edge engine -> segment under copy). A child naming its parent's
items, or a parent its child's, is no edge: that is what nesting is. A cycle among siblings
(A names B and B names A, or longer) fails the check, each edge shown with a file that
makes it. Test code (files named *tests.rs, and a trailing `#[cfg(test)] mod tests`) and
comments are skipped, as in scripts/check-imports.sh.
"""
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# Known cycles, each with why it stands: (parent module, its child modules in the cycle).
# The check fails on any other cycle, on a known one that grew, and on a known one that is
# gone (remove its line).
KNOWN = {}


def module_of(rel):
    """src/copy/engine.rs -> ("copy", "engine"); src/copy/mod.rs -> ("copy",)."""
    parts = rel[len("src/"):-len(".rs")].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def code_of(path):
    out, prev = [], ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if re.match(r"^mod tests\s*\{", line) and prev.startswith("#[cfg(test)]"):
                break
            prev = line
            out.append(re.sub(r"^\s*//.*", "", line))
    text = "".join(out)
    # `#[cfg(test)] mod x;` declarations and `#[path]` test modules are tests too.
    return text


def expand(text):
    """`a::{b, c::{d, e}}` -> `a::b, a::c::d, a::c::e` (innermost braces first)."""
    pattern = re.compile(r"((?:crate|super|self)(?:::\w+)*)::\{([^{}]*)\}")

    def one(m):
        prefix, items = m.group(1), [p.strip() for p in m.group(2).split(",")]
        names = [re.sub(r"\s+as\s+\w+", "", p) for p in items if p]
        return ", ".join(prefix if n == "self" else f"{prefix}::{n}" for n in names)

    while True:
        new = pattern.sub(one, text)
        if new == text:
            return text
        text = new


def main():
    files = []
    for dirpath, _, names in os.walk(os.path.join(ROOT, "src")):
        for n in names:
            if not n.endswith(".rs") or n.endswith("tests.rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, n), ROOT)
            if rel.startswith("src/bin/"):
                continue
            files.append(rel)
    modules = {module_of(f) for f in files}

    def resolve(path):
        """The longest known module that is a prefix of `path`."""
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in modules:
                return tuple(path[:n])
        return ()

    edges = defaultdict(dict)  # parent -> {(a, b): example}
    for rel in sorted(files):
        here = module_of(rel)
        text = expand(code_of(os.path.join(ROOT, rel)))
        for m in re.finditer(r"\b((?:crate|(?:super::)*super)(?:::\w+)+)", text):
            segs = m.group(1).split("::")
            if segs[0] == "crate":
                target = segs[1:]
            else:
                ups = 0
                while segs and segs[0] == "super":
                    ups += 1
                    segs = segs[1:]
                if ups > len(here):
                    continue
                target = list(here[: len(here) - ups]) + segs
            to = resolve(target)
            common = 0
            while common < min(len(here), len(to)) and here[common] == to[common]:
                common += 1
            if common == len(here) or common == len(to):
                continue  # the same module, an ancestor or a descendant
            parent = here[:common]
            a, b = here[common], to[common]
            edges[parent].setdefault((a, b), f"{rel}: {m.group(1)}")

    bad, known = 0, set()
    for parent, pairs in sorted(edges.items()):
        graph = defaultdict(set)
        for a, b in pairs:
            graph[a].add(b)
        for scc in sccs(graph):
            if len(scc) < 2:
                continue
            if (parent, frozenset(scc)) in KNOWN:
                known.add((parent, frozenset(scc)))
                continue
            bad += 1
            where = "::".join(("crate",) + parent)
            print(f"check-cycles: a cycle among {where}'s modules {', '.join(sorted(scc))}:")
            for (a, b), example in sorted(pairs.items()):
                if a in scc and b in scc:
                    print(f"  {a} -> {b}  ({example})")
    for parent, members in sorted(set(KNOWN) - known, key=str):
        where = "::".join(("crate",) + parent)
        print(f"check-cycles: the known cycle among {where}'s {', '.join(sorted(members))} "
              "is gone: remove it from KNOWN")
        bad += 1
    if bad:
        print(f"check-cycles: {bad} problem(s) with cycles between sibling modules")
        return 1
    n = sum(len(p) for p in edges.values())
    print(f"check-cycles: {n} edges between sibling modules, no cycle "
          f"but the {len(known)} known ones")
    return 0


def sccs(graph):
    """Tarjan's strongly connected components."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    nodes = set(graph) | {b for bs in graph.values() for b in bs}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
