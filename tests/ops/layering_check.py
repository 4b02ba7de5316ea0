#!/usr/bin/python3
# layering_check: no include cycle in daemon/; the shared layer and the tools include no daemon/ header.
"""Reads the #include "..." lines of daemon/ (and daemon/providers/), folds each x.h into its
module x (x.c + x.h), and reports every cycle among modules (strongly connected components of
more than one module).  The shared layer is include/callrouted/*.h with its sources
daemon/common/*.c (the library callrouted_common): each of its files includes only
"callrouted/..." headers and system headers.  The tools (tools/*.c) include only the shared
layer's headers and their own (tools/*.h), never a daemon/ header: they link the shared layer,
never the daemon.  Exit 1 on any of these; `--graph` prints the module graph (one line per
module: what it includes; the shared layer's modules as callrouted/NAME), then what each tool
includes."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


COMMON = ROOT / "daemon" / "common"
SHARED = ROOT / "include" / "callrouted"


def module_of(path):
    if path.parent in (COMMON, SHARED):
        return "callrouted/" + path.stem
    return str(path.relative_to(ROOT / "daemon").with_suffix(""))


def shared_files():
    return sorted(p for d in (SHARED, COMMON) for p in d.glob("*") if p.suffix in (".c", ".h"))


def resolve(f, inc, headers):
    """The file of the tree that `#include "inc"` in f names, or None (generated, system)."""
    for base in (f.parent, ROOT / "daemon", ROOT / "include"):
        if (base / inc).is_file():
            return (base / inc).resolve()
    return headers.get(Path(inc).name)


def daemon_graph():
    files = sorted(p for p in (ROOT / "daemon").rglob("*") if p.suffix in (".c", ".h"))
    files = sorted(set(files) | set(shared_files()))
    headers = {p.name: p for p in files if p.suffix == ".h" and p.parent != SHARED}
    graph = {}
    for f in files:
        mod = module_of(f)
        deps = graph.setdefault(mod, set())
        for inc in INCLUDE.findall(f.read_text(errors="replace")):
            target = resolve(f, inc, headers)
            if target is None:
                continue  # generated or system headers
            dep = module_of(target)
            if dep != mod:
                deps.add(dep)
    return graph


def shared_violations():
    """Files of the shared layer that include anything but callrouted/ or system headers."""
    bad = []
    for f in shared_files():
        for inc in INCLUDE.findall(f.read_text(errors="replace")):
            if not (inc.startswith("callrouted/") and (ROOT / "include" / inc).is_file()):
                bad.append((str(f.relative_to(ROOT)), inc))
    return bad


def cycles(graph):
    """Tarjan's strongly connected components with more than one member."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def tool_violations():
    """Tool sources that include a quoted header other than the shared layer's or a tool's own
    (a header next to it under tools/)."""
    bad = []
    for f in sorted((ROOT / "tools").rglob("*")):
        if f.suffix not in (".c", ".h"):
            continue
        for inc in INCLUDE.findall(f.read_text(errors="replace")):
            if inc.startswith("callrouted/") and (ROOT / "include" / inc).is_file():
                continue
            own = (f.parent / inc).resolve()
            if own.is_file() and ROOT / "tools" in own.parents:
                continue
            bad.append((str(f.relative_to(ROOT)), inc))
    return bad


def main():
    graph = daemon_graph()
    if "--graph" in sys.argv:
        for mod in sorted(graph):
            print("%-24s -> %s" % (mod, " ".join(sorted(graph[mod])) or "(nothing)"))
        for f in sorted((ROOT / "tools").glob("*.c")):
            incs = sorted(i[:-2] for i in INCLUDE.findall(f.read_text(errors="replace")))
            print("%-24s -> %s" % ("tools/" + f.stem, " ".join(incs) or "(nothing)"))
    found = cycles(graph)
    for comp in found:
        print("cycle among: " + " ".join(comp))
    shared = shared_violations()
    for f, inc in shared:
        print("%s (shared layer) includes %s: only callrouted/ and system headers" % (f, inc))
    tools = tool_violations()
    for f, inc in tools:
        print("%s includes %s: a tool includes only callrouted/ (the shared layer) and tools/ "
              "headers" % (f, inc))
    edges = sum(len(d) for d in graph.values())
    nshared = sum(1 for m in graph if m.startswith("callrouted/"))
    print("layering_check: %d modules (%d shared), %d include edges, %d cycle%s, "
          "%d shared-layer violation%s, %d tool violation%s" % (
              len(graph), nshared, edges, len(found), "" if len(found) == 1 else "s",
              len(shared), "" if len(shared) == 1 else "s", len(tools),
              "" if len(tools) == 1 else "s"))
    return 1 if found or shared or tools else 0


if __name__ == "__main__":
    sys.exit(main())
