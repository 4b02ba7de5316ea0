# openapi: every admin listener answer the tests receive, checked against daemon/openapi.json.
"""check() is called by the tests' admin clients (support.admin_api.api, Daemon.admin,
test_callroutectl's api): the status must be one the document gives that path and method, the
body must match its schema (JSON Schema 2020-12, python3-jsonschema), and a 2xx answer must not
have come from an undocumented query parameter or a request body the document refuses.  A path or method the document lacks may only
answer 404 not_found or 405 method_not_allowed (what the document says of them); the listener's
transport errors (408, 413, 431, 503 too many connections) are allowed on any path, in the error
shape.  A mismatch is an AssertionError: the document and the code disagree."""

import json
import re
import urllib.parse
import warnings

import jsonschema

from support.build import REPO

DOC_PATH = REPO / "daemon" / "openapi.json"
DOC = json.loads(DOC_PATH.read_text())
TRANSPORT = {408, 413, 431, 503}

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    _RESOLVER = jsonschema.RefResolver.from_schema(DOC)

_PATHS = [(re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(p)) + "$"), p)
          for p in DOC["paths"]]


def _deref(o):
    while isinstance(o, dict) and "$ref" in o:
        node = DOC
        for part in o["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        o = node
    return o


def _validate(value, schema, what):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        v = jsonschema.Draft202012Validator(schema, resolver=_RESOLVER)
        errors = sorted(v.iter_errors(value), key=lambda e: list(e.path))
    assert not errors, "%s: the answer does not match daemon/openapi.json: %s\n%s" % (
        what, "; ".join("%s: %s" % ("/".join(map(str, e.path)) or "(body)", e.message)
                        for e in errors[:5]), json.dumps(value)[:600])


ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}


def operation(method, path):
    """(path template, operation) of the document, or (None, None)."""
    m = "get" if method.upper() == "HEAD" else method.lower()
    for rx, tmpl in _PATHS:
        if rx.match(path):
            return tmpl, DOC["paths"][tmpl].get(m)
    return None, None


def check(method, target, status, headers, body, request=None):
    """request: the JSON body sent, if any (bytes); an accepted one (2xx) must match the
    operation's requestBody schema: a field the code takes must be in the document."""
    path, _, query = target.partition("?")
    tmpl, op = operation(method, path)
    what = "%s %s -> %d" % (method, target, status)
    ctype = (headers or {}).get("content-type", "")
    head = method.upper() == "HEAD"

    def parsed():
        assert ctype.startswith("application/json"), "%s: Content-Type %r" % (what, ctype)
        try:
            return json.loads(body)
        except ValueError:
            raise AssertionError("%s: the body is not JSON: %r" % (what, body[:200]))

    if op is None:
        assert status in (404, 405) or status in TRANSPORT or status == 400, \
            "%s: %s is not in daemon/openapi.json, yet answered %d" % (
                what, ("method %s of %s" % (method, tmpl)) if tmpl else "the path", status)
        if not head:
            j = parsed()
            _validate(j, ERROR_SCHEMA, what)
            if status in (404, 405):
                assert j["error"]["code"] in ("not_found", "method_not_allowed"), (what, j)
        return
    resp = op["responses"].get(str(status))
    if resp is None:
        assert status in TRANSPORT, "%s: status %d is not documented for %s %s (%s)" % (
            what, status, method.upper(), tmpl, ", ".join(op["responses"]))
        resp = {"content": {"application/json": {"schema": ERROR_SCHEMA}}}
    resp = _deref(resp)
    if 200 <= status < 300 and query:
        names = {_deref(p)["name"] for p in op.get("parameters", []) +
                 DOC["paths"][tmpl].get("parameters", []) if _deref(p)["in"] == "query"}
        for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True):
            assert k in names, "%s: query parameter %r is not documented for %s %s" % (
                what, k, method.upper(), tmpl)
    rb = op.get("requestBody")
    if 200 <= status < 300 and request:
        assert rb, "%s: a body was accepted, the document has none for %s %s" % (
            what, method.upper(), tmpl)
        _validate(json.loads(request), _deref(rb)["content"]["application/json"]["schema"],
                  what + " (the request accepted)")
    content = resp.get("content")
    if not content or head:
        return
    media = next((m for m in content if ctype.startswith(m)), None)
    assert media is not None, "%s: Content-Type %r, the document has %s" % (
        what, ctype, list(content))
    if media == "application/json":
        _validate(parsed(), content[media]["schema"], what)
