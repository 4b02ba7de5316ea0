#!/usr/bin/python3
# layering_check: the include graph of daemon/ has no cycle, and tools/ include no new daemon/ header.
"""Reads the #include "..." lines of daemon/ (and daemon/providers/), folds each x.h into its
module x (x.c + x.h), and reports every cycle among modules (strongly connected components of
more than one module) and every daemon/ header that a file under tools/ includes.  Exit 1 on
either; `--graph` prints the module graph (one line per module: what it includes)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path):
    return str(path.relative_to(ROOT / "daemon").with_suffix(""))


def daemon_graph():
    files = sorted(p for p in (ROOT / "daemon").rglob("*") if p.suffix in (".c", ".h"))
    headers = {p.name: p for p in files if p.suffix == ".h"}
    graph = {}
    for f in files:
        mod = module_of(f)
        deps = graph.setdefault(mod, set())
        for inc in INCLUDE.findall(f.read_text(errors="replace")):
            target = (f.parent / inc)
            if not target.exists():
                target = headers.get(Path(inc).name)
            if target is None or not target.exists() or ROOT / "daemon" not in target.parents:
                continue  # include/callrouted/*.h, generated or system headers
            dep = module_of(target)
            if dep != mod:
                deps.add(dep)
    return graph


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


# The daemon headers callroutectl still includes until the shared layer (include/callrouted/,
# issue 11 item 5) replaces them: a ratchet — any other tool include fails, and so does one of
# these once it is gone from the code but still listed here.
KNOWN_TOOL_INCLUDES = {
    ("tools/callroutectl.c", "config.h"), ("tools/callroutectl.c", "e164.h"),
    ("tools/callroutectl.c", "log.h"), ("tools/callroutectl.c", "migrate.h"),
    ("tools/callroutectl.c", "rating.h"), ("tools/callroutectl.c", "routes.h"),
}


def tool_violations():
    bad = []
    daemon_headers = {p.name for p in (ROOT / "daemon").rglob("*.h")}
    for f in sorted((ROOT / "tools").rglob("*")):
        if f.suffix not in (".c", ".h"):
            continue
        for inc in INCLUDE.findall(f.read_text(errors="replace")):
            if Path(inc).name in daemon_headers and not inc.startswith("callrouted/"):
                bad.append((str(f.relative_to(ROOT)), inc))
    return bad


def main():
    graph = daemon_graph()
    if "--graph" in sys.argv:
        for mod in sorted(graph):
            print("%-24s -> %s" % (mod, " ".join(sorted(graph[mod])) or "(nothing)"))
    found = cycles(graph)
    for comp in found:
        print("cycle among: " + " ".join(comp))
    seen = tool_violations()
    bad = [b for b in seen if b not in KNOWN_TOOL_INCLUDES]
    stale = sorted(KNOWN_TOOL_INCLUDES - set(seen))
    for tool, inc in seen:
        print("%s includes daemon header %s%s" % (
            tool, inc, " (known: issue 11 item 5)" if (tool, inc) in KNOWN_TOOL_INCLUDES else ""))
    for tool, inc in stale:
        print("%s no longer includes %s: remove it from KNOWN_TOOL_INCLUDES" % (tool, inc))
    edges = sum(len(d) for d in graph.values())
    print("layering_check: %d modules, %d include edges, %d cycle%s, %d new tool violation%s, "
          "%d known" % (len(graph), edges, len(found), "" if len(found) == 1 else "s", len(bad),
                        "" if len(bad) == 1 else "s", len(seen) - len(bad)))
    return 1 if found or bad or stale else 0


if __name__ == "__main__":
    sys.exit(main())
