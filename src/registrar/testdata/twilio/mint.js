// Mints the Twilio-helper fixtures with the official `twilio` npm package (documentation of
// how twilio-node-*.jwt were made; CI never runs this). The library reads the clock itself
// (Date.now in AccessToken and the npm jsonwebtoken, `new Date()` in ClientCapability), so
// both are pinned to IAT to make the tokens reproducible.
// Run: see mint.sh (needs `npm install twilio` in a scratch directory).
"use strict";
const IAT = 1767225600; // 2026-01-01T00:00:00Z
const TTL = 315360000; // 10 years
const RealDate = Date;
global.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [IAT * 1000]));
  }
  static now() {
    return IAT * 1000;
  }
};

const fs = require("fs");
const path = require("path");
const twilio = require("twilio");

// The sample account and API key from conf/switchboard.toml.
const ACCOUNT_SID = "AC00000000000000000000000000000001";
const AUTH_TOKEN = "demo-auth-token-change-me";
const KEY_SID = "SK00000000000000000000000000000001";
const KEY_SECRET = "demo-api-key-secret-change-me";
const APP_SID = "AP00000000000000000000000000000001";
const PARAMS = { To: "+15550100001", mode: "demo call" };
const out = process.argv[2] || __dirname;

const AccessToken = twilio.jwt.AccessToken;
const token = new AccessToken(ACCOUNT_SID, KEY_SID, KEY_SECRET, { identity: "alice", ttl: TTL });
token.addGrant(
  new AccessToken.VoiceGrant({
    incomingAllow: true,
    outgoingApplicationSid: APP_SID,
    outgoingApplicationParams: PARAMS,
  }),
);
fs.writeFileSync(path.join(out, "twilio-node-access-token.jwt"), token.toJwt() + "\n");

const ClientCapability = twilio.jwt.ClientCapability;
const capability = new ClientCapability({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, ttl: TTL });
capability.addScope(new ClientCapability.IncomingClientScope("alice"));
capability.addScope(
  new ClientCapability.OutgoingClientScope({ applicationSid: APP_SID, clientName: "alice", params: PARAMS }),
);
fs.writeFileSync(path.join(out, "twilio-node-capability.jwt"), capability.toJwt() + "\n");
console.log("twilio-node", require("twilio/package.json").version);
