// The webphone: JsSIP registers with a token from this site (/token) over the switch's
// SIP over secure WebSocket, answers and places calls (WebRTC audio: ICE, DTLS-SRTP),
// mutes, sends DTMF (RFC 4733 in the media) and hangs up. The page's state is
// `window.phone`; everything it does is also reported to listeners (`phone.on(fn)`), which
// is how sip-tests/browser.rs follows it.
'use strict';

const $ = (id) => document.getElementById(id);

const phone = window.phone = {
  ua: null,
  session: null,
  identity: null,
  muted: false,
  listeners: [],
  on(fn) { this.listeners.push(fn); },
};

function emit(event) {
  const line = JSON.stringify(event);
  $('log').textContent = `${new Date().toISOString().slice(11, 19)} ${line}\n` + $('log').textContent;
  for (const fn of phone.listeners) fn(event);
}

// Chrome plays (and decodes) a remote track only when an element plays it.
const CALL_OPTIONS = {
  mediaConstraints: { audio: true, video: false },
  pcConfig: { iceServers: [] },
  rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
};

function setBadge(id, text) {
  $(id).textContent = text;
  $(id).className = `badge ${text}`;
}

function setCallState(text) {
  $('callstate').textContent = text;
  const inCall = phone.session !== null;
  $('hangup').disabled = !inCall;
  $('mute').disabled = !inCall;
  for (const b of $('keypad').children) b.disabled = !inCall;
  $('call').disabled = inCall || !phone.ua;
}

// ---------------------------------------------------------------------------------------
// Registration: a token for the identity, then REGISTER with `Authorization: Bearer`.
// JsSIP sends `authorization_jwt` on the first REGISTER; the switch takes it there (a 401
// Bearer challenge would make JsSIP give up).
// ---------------------------------------------------------------------------------------

phone.online = async function online(identity) {
  if (phone.ua) return;
  const r = await fetch(`/token?identity=${encodeURIComponent(identity)}`);
  if (!r.ok) {
    emit({ failed: `token: ${r.status} ${await r.text()}` });
    return;
  }
  const t = await r.json();
  phone.identity = t.identity;
  const ua = phone.ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(t.ws_url)],
    uri: `sip:${t.identity}@${t.realm}`,
    authorization_jwt: `Bearer ${t.token}`,
    register: false,
    session_timers: false,
    user_agent: 'Switchboard webphone (JsSIP)',
  });
  phone.realm = t.realm;
  setBadge('registration', 'registering');
  ua.on('connected', () => ua.register());
  ua.on('disconnected', () => setBadge('registration', 'disconnected'));
  ua.on('registered', (e) => {
    setBadge('registration', 'registered');
    emit({ registered: e.response.status_code });
  });
  ua.on('unregistered', () => {
    setBadge('registration', 'offline');
    emit({ unregistered: true });
  });
  ua.on('registrationFailed', (e) => {
    setBadge('registration', 'failed');
    emit({ failed: e.cause, status: e.response && e.response.status_code });
  });
  ua.on('newRTCSession', (e) => {
    if (e.originator !== 'remote') return;
    if (phone.session) {
      e.session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      return;
    }
    follow(e.session);
    const from = e.request.getHeader('From');
    $('caller').textContent = e.request.from.display_name || e.request.from.uri.user;
    $('incoming').hidden = false;
    setCallState('ringing');
    emit({ incoming: from });
  });
  ua.start();
  $('online').disabled = true;
  $('offline').disabled = false;
  setCallState('idle');
  watchPresence();
  // Tokens expire: before this one does, come back with a fresh one (when no call is up).
  clearTimeout(phone.renewTimer);
  phone.renewTimer = setTimeout(async function renew() {
    if (phone.session) {
      phone.renewTimer = setTimeout(renew, 30000);
      return;
    }
    await phone.offline();
    await phone.online(phone.identity);
  }, Math.max(60, t.expires_in - 120) * 1000);
};

phone.offline = function offline() {
  return new Promise((resolve) => {
    const ua = phone.ua;
    if (!ua) return resolve();
    clearTimeout(phone.renewTimer);
    const done = () => {
      ua.stop();
      phone.ua = null;
      $('online').disabled = false;
      $('offline').disabled = true;
      setCallState('idle');
      resolve();
    };
    if (!ua.isRegistered()) return done();
    ua.once('unregistered', done);
    ua.unregister();
    setTimeout(done, 3000);
  });
};

// The switch's view: available (registered, idle), busy (on a call), offline. Asked of
// this site, which holds the REST credentials.
function watchPresence() {
  clearInterval(phone.presenceTimer);
  const poll = async () => {
    if (!phone.identity) return;
    try {
      const r = await fetch(`/presence?identity=${encodeURIComponent(phone.identity)}`);
      const c = await r.json();
      if (c.status && c.status !== phone.presence) {
        phone.presence = c.status;
        setBadge('presence', c.status);
        emit({ presence: c.status });
      }
    } catch (e) { /* the next poll tries again */ }
  };
  poll();
  phone.presenceTimer = setInterval(poll, 2000);
}

// ---------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------

function hookPeerConnection(pc) {
  phone.pc = pc;
  pc.addEventListener('track', (t) => {
    const audio = $('remote');
    audio.srcObject = t.streams[0] || new MediaStream([t.track]);
    audio.play().catch(() => {});
  });
}

function follow(session) {
  phone.session = session;
  phone.muted = false;
  $('mute').textContent = 'Mute';
  session.on('peerconnection', (p) => hookPeerConnection(p.peerconnection));
  session.on('progress', () => setCallState('ringing'));
  session.on('confirmed', () => {
    setCallState('in call');
    emit({ confirmed: true });
  });
  const over = (what) => (e) => {
    phone.session = null;
    $('incoming').hidden = true;
    setCallState('idle');
    emit({ [what]: e.cause, status: e.message && e.message.status_code });
  };
  session.on('ended', over('ended'));
  session.on('failed', over('call_failed'));
}

// A number (+1…) or a client name; the switch runs the token's outgoing application.
phone.call = function call(target) {
  if (!phone.ua || phone.session) return;
  const uri = target.startsWith('sip:') ? target : `sip:${target}@${phone.realm}`;
  const session = phone.ua.call(uri, CALL_OPTIONS);
  follow(session);
  if (session.connection) hookPeerConnection(session.connection);
  setCallState('calling');
};

phone.answer = function answer() {
  if (!phone.session || phone.session.direction !== 'incoming') return;
  $('incoming').hidden = true;
  phone.session.answer(CALL_OPTIONS);
};

phone.decline = function decline() {
  if (!phone.session) return;
  phone.session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
};

phone.hangup = function hangup() {
  if (phone.session) phone.session.terminate();
};

phone.mute = function mute(on) {
  if (!phone.session) return;
  phone.muted = on === undefined ? !phone.muted : on;
  if (phone.muted) phone.session.mute({ audio: true });
  else phone.session.unmute({ audio: true });
  $('mute').textContent = phone.muted ? 'Unmute' : 'Mute';
  emit({ muted: phone.muted });
};

// RFC 4733 telephone-events inside the SRTP (RTCDTMFSender), as a carrier expects.
phone.dtmf = function dtmf(digits) {
  if (!phone.session) return;
  phone.session.sendDTMF(digits, { transportType: 'RFC2833', duration: 160, interToneGap: 120 });
};

// The call's audio counters (what the tests check; handy when debugging one-way audio).
phone.stats = async function stats() {
  const o = { inPackets: 0, inEnergy: 0, outPackets: 0 };
  if (!phone.pc) return o;
  (await phone.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      o.inPackets = s.packetsReceived;
      o.inEnergy = s.totalAudioEnergy || 0;
    }
    if (s.type === 'outbound-rtp' && s.kind === 'audio') o.outPackets = s.packetsSent;
    if (s.type === 'transport') {
      o.dtls = s.dtlsState;
      o.srtpCipher = s.srtpCipher;
    }
  });
  return o;
};

// ---------------------------------------------------------------------------------------
// The buttons
// ---------------------------------------------------------------------------------------

$('online').onclick = () => phone.online($('identity').value.trim());
$('offline').onclick = () => phone.offline();
$('call').onclick = () => phone.call($('target').value.trim());
$('answer').onclick = () => phone.answer();
$('decline').onclick = () => phone.decline();
$('hangup').onclick = () => phone.hangup();
$('mute').onclick = () => phone.mute();
for (const key of '123456789*0#') {
  const b = document.createElement('button');
  b.textContent = key;
  b.disabled = true;
  b.onclick = () => phone.dtmf(key);
  $('keypad').appendChild(b);
}
