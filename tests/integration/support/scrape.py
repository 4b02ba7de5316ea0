# scrape: the daemon's /metrics page parsed (Prometheus text exposition format 0.0.4).
"""scrape(d) fetches and parses a daemon's /metrics; Scrape answers questions about the samples."""

import re

# ---- Prometheus text exposition format 0.0.4 ----

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def _labels(text):
    out, pos = {}, 0
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        if not m:
            raise ValueError("bad label set %r" % text)
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


class Scrape:
    """A parsed /metrics answer: samples by (name, labels), HELP and TYPE by family."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.help = {}
        self.type = {}
        self.order = []  # sample names in output order
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# HELP "):
                name, _, h = line[7:].partition(" ")
                self.help[name] = h
                continue
            if line.startswith("# TYPE "):
                name, _, t = line[7:].partition(" ")
                self.type[name] = t
                continue
            if line.startswith("#"):
                continue
            m = _SAMPLE_RE.match(line)
            if not m:
                raise ValueError("unparseable sample line %r" % line)
            labels = _labels(m.group(2) or "")
            self.samples[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
            self.order.append(m.group(1))

    def get(self, name, **labels):
        """The one sample with exactly these labels (0.0 if absent: sparse series)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name, **labels):
        return (name, frozenset(labels.items())) in self.samples

    def sum(self, name, **match):
        """Sum of the samples of name whose labels include match."""
        return sum(v for (n, ls), v in self.samples.items()
                   if n == name and set(match.items()) <= ls)

    def series(self, name):
        return {ls: v for (n, ls), v in self.samples.items() if n == name}

    def family(self, sample_name):
        """The metric family a sample belongs to (histogram suffixes stripped)."""
        for suf in ("_bucket", "_sum", "_count"):
            if sample_name.endswith(suf):
                base = sample_name[:-len(suf)]
                if self.type.get(base) == "histogram":
                    return base
        return sample_name


def scrape(d):
    r = d.admin("GET", "/metrics")
    assert r.status == 200, r
    return Scrape(r.body.decode())
