"""Mints the Twilio-helper fixtures with the official `twilio` PyPI package (documentation of
how twilio-python-*.jwt were made; CI never runs this). The library reads the clock itself, so
time.time is pinned to IAT to make the tokens reproducible.
Run: see mint.sh (needs `pip install twilio` in a scratch virtualenv)."""
import os
import sys
import time

IAT = 1767225600  # 2026-01-01T00:00:00Z
TTL = 315360000  # 10 years
time.time = lambda: float(IAT)

import twilio  # noqa: E402
from twilio.jwt.access_token import AccessToken  # noqa: E402
from twilio.jwt.access_token.grants import VoiceGrant  # noqa: E402
from twilio.jwt.client import ClientCapabilityToken  # noqa: E402

# The sample account and API key from conf/switchboard.toml.
ACCOUNT_SID = "AC00000000000000000000000000000001"
AUTH_TOKEN = "demo-auth-token-change-me"
KEY_SID = "SK00000000000000000000000000000001"
KEY_SECRET = "demo-api-key-secret-change-me"
APP_SID = "AP00000000000000000000000000000001"
PARAMS = {"To": "+15550100001", "mode": "demo call"}
out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))

token = AccessToken(ACCOUNT_SID, KEY_SID, KEY_SECRET, identity="alice", ttl=TTL)
token.add_grant(
    VoiceGrant(
        incoming_allow=True,
        outgoing_application_sid=APP_SID,
        outgoing_application_params=PARAMS,
    )
)
with open(os.path.join(out, "twilio-python-access-token.jwt"), "w") as f:
    f.write(token.to_jwt() + "\n")

capability = ClientCapabilityToken(ACCOUNT_SID, AUTH_TOKEN, ttl=TTL)
capability.allow_client_incoming("alice")
capability.allow_client_outgoing(APP_SID, **PARAMS)
with open(os.path.join(out, "twilio-python-capability.jwt"), "w") as f:
    f.write(capability.to_jwt() + "\n")
print("twilio-python", twilio.__version__)
