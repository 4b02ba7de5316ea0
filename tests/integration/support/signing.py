# signing: signed webhook requests of each provider, with the signing code of tools/send-webhook.
"""The signing and payload functions of tools/send-webhook (`sw`) and signed requests to a Daemon."""

import importlib.machinery
import importlib.util
import json

from support.build import REPO
from support.data import (BLAND_SECRET, BLAND_SLUG, RETELL_KEY, RETELL_SLUG, VAPI_SECRET,
                          VAPI_SLUG)


def _load_send_webhook():
    path = str(REPO / "tools" / "send-webhook")
    loader = importlib.machinery.SourceFileLoader("send_webhook", path)
    spec = importlib.util.spec_from_loader("send_webhook", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


# The signing and payload functions of tools/send-webhook, shared with the CLI.
sw = _load_send_webhook()


def body_bytes(obj):
    return obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()


def retell_inbound(d, to, slug=RETELL_SLUG, key=RETELL_KEY, frm="+14155550123"):
    body = sw.build_payload("retell", "call_inbound", to, frm)
    return d.post("retell", slug, body, sw.retell_headers(key, body))


def vapi_assistant_request(d, to, slug=VAPI_SLUG, secret=VAPI_SECRET, auth="hmac",
                           bearer_form="authorization", frm="+14155550123"):
    body = sw.build_payload("vapi", "assistant-request", to, frm)
    if auth == "bearer":
        h = sw.vapi_bearer_headers(secret, bearer_form)
    else:
        h = sw.vapi_hmac_headers(secret, body)
    return d.post("vapi", slug, body, h)


def bland_dynamic(d, to, slug=BLAND_SLUG, secret=BLAND_SECRET, frm="+14155550123"):
    body = sw.build_payload("bland", "dynamic_data", to, frm)
    return d.post("bland", slug, body, sw.bland_dynamic_headers(secret, slug))


def signed_post(d, provider, slug, secret, obj, auth="hmac"):
    """POST obj (dict or raw bytes) signed the way the provider signs it."""
    body = body_bytes(obj)
    return d.post(provider, slug, body, sw.sign_headers(provider, secret, body, slug, auth))
