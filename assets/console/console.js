// The pinless operator console. Plain JavaScript, no framework, no build
// step: the binary serves this file as it is.
//
// Map of this file:
//   api / tokens      every API call, with the tab's token (sessionStorage)
//   sign in / out     check the token with GET /v1/calls, then go live
//   live calls        one card per call, moved between "on hold" (grouped
//                     per entry) and "in a room"; ended calls in a table
//   event stream      GET /v1/events read with fetch (EventSource cannot
//                     send a token), reconnecting with Last-Event-ID
//   actions           transfer, back to hold, hang up, play a prompt
//   call page         #call/<id>: details, recording, timeline, SIP ladder
//
// Everything that comes from the API (caller headers above all, which a
// caller controls) reaches the page as text nodes, never as HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'pinless.token';
  const RECENT_MS = 3600 * 1000;
  const MAX_ENDED = 50;
  // Backlog events older than our snapshot of the calls (minus this) are
  // already reflected in it: no need to fetch their call again.
  const SNAPSHOT_SLACK_MS = 2000;
  // A stream that has said nothing (not even its 15 s keep-alive) for this
  // long is dead without knowing it: drop it and reconnect.
  const STREAM_SILENCE_MS = 40000;

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- DOM

  // el('li', {class: 'x', text: 'y', onclick: f}, child, …): text is set
  // with textContent; attributes with setAttribute; on* as listeners.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.append(typeof kid === 'string' ? document.createTextNode(kid) : kid);
    }
    return e;
  }

  let uid = 0;
  const nextId = (prefix) => `${prefix}-${++uid}`;

  // A success fades after a while (the card itself shows the new state);
  // an error stays until the next try.
  const OK_FADES_MS = 8000;

  function setMsg(node, text, kind) {
    node.textContent = text || '';
    node.classList.toggle('error', kind === 'error');
    node.classList.toggle('ok', kind === 'ok');
    if (kind === 'ok' && text) {
      window.setTimeout(() => { if (node.textContent === text) node.textContent = ''; }, OK_FADES_MS);
    }
  }

  function announce(text) {
    // Re-set so that the same sentence twice is read twice.
    const a = $('announce');
    a.textContent = '';
    window.setTimeout(() => { a.textContent = text; }, 50);
  }

  // ---------------------------------------------------------- formatting

  // The node's clock minus ours, from the Date header (1 s resolution, so
  // only trusted when it is clearly off).
  let skew = 0;
  const now = () => Date.now() + skew;

  function noteDate(response) {
    const d = Date.parse(response.headers.get('date') || '');
    if (Number.isNaN(d)) return;
    const s = d - Date.now();
    skew = Math.abs(s) > 2000 ? s : 0;
  }

  function fmtDur(ms) {
    const t = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(t / 3600);
    const m = Math.floor((t % 3600) / 60);
    const s = String(t % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
  }

  function fmtTime(ms) {
    const d = new Date(ms - skew);
    const pad = (n, w) => String(n).padStart(w || 2, '0');
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtTimeMs(ms) {
    return `${fmtTime(ms)}.${String(((ms % 1000) + 1000) % 1000).padStart(3, '0')}`;
  }

  // sipHeaders: {"X-Lang": "de", "X-Tag": ["a", "b"]} → [["X-Lang","de"], …]
  function headerPairs(obj) {
    const out = [];
    for (const [name, v] of Object.entries(obj || {})) {
      for (const one of Array.isArray(v) ? v : [v]) out.push([name, String(one)]);
    }
    return out;
  }

  // ------------------------------------------------------------------ api

  let token = null;

  class ApiFailure extends Error {
    constructor(status, text) {
      super(text);
      this.status = status;
      this.text = text;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiFailure(0, `the node did not answer (${e.message})`);
    }
    noteDate(r);
    let data = null;
    try { data = await r.json(); } catch (_) { data = null; }
    if (!r.ok) {
      const text = data && typeof data.error === 'string' ? data.error : (r.statusText || 'failed');
      throw new ApiFailure(r.status, text);
    }
    return data;
  }

  // What to say when an action failed.
  const failText = (e) => (e.status ? `${e.status}: ${e.text}` : e.text || String(e));

  // An answer of 401 in the middle of a session: the token was revoked.
  function guard(e) {
    if (e instanceof ApiFailure && e.status === 401) {
      signOut('The node no longer accepts this token. Sign in again.');
      return true;
    }
    return false;
  }

  // ------------------------------------------------------- sign in / out

  async function signIn(candidate) {
    const msg = $('signin-msg');
    setMsg(msg, 'Checking the token…');
    token = candidate;
    let list;
    try {
      list = await api('GET', '/v1/calls');
    } catch (e) {
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn();
      setMsg(msg, e.status === 401
        ? `This token was refused (401: ${e.text}).`
        : `Could not sign in: ${failText(e)}`, 'error');
      $('token').focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, candidate);
    $('token').value = '';
    setMsg(msg, '');
    $('signin').hidden = true;
    $('signout').hidden = false;
    applySnapshot(list);
    loadRecent();
    watchRegistrations();
    startStream();
    route();
  }

  function signOut(reason) {
    stopStream();
    unwatchRegistrations();
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    for (const c of cards.values()) c.root.remove();
    cards.clear();
    groups.clear();
    $('held').replaceChildren();
    ended.clear();
    renderEnded();
    pageCard = null;
    showSignIn();
    setMsg($('signin-msg'), reason || 'Signed out.', reason ? 'error' : 'ok');
    setConn('');
    $('token').focus();
  }

  function showSignIn() {
    $('signin').hidden = false;
    $('live').hidden = true;
    $('call').hidden = true;
    $('signout').hidden = true;
  }

  // ---------------------------------------------------------- live calls

  const cards = new Map(); // callId → card on the live lists
  const groups = new Map(); // entry → { section, list, heading }
  const ended = new Map(); // callId → ended call (view or record)
  let snapshotAt = 0;

  function applySnapshot(list) {
    snapshotAt = now();
    const seen = new Set();
    for (const v of (list && list.calls) || []) {
      seen.add(v.callId);
      upsert(v, false);
    }
    // Calls we show that the node no longer lists have ended meanwhile.
    for (const id of [...cards.keys()]) if (!seen.has(id)) refresh(id);
    renderCounts();
  }

  async function reloadCalls() {
    try {
      applySnapshot(await api('GET', '/v1/calls'));
    } catch (e) {
      if (!guard(e)) setConn(`Could not reload the calls: ${failText(e)}`);
    }
  }

  async function loadRecent() {
    try {
      const since = Math.floor(now() - RECENT_MS);
      const page = await api('GET', `/v1/call-records?since=${since}&limit=${MAX_ENDED}`);
      for (const r of (page && page.records) || []) if (!cards.has(r.callId)) ended.set(r.callId, r);
      renderEnded();
    } catch (e) {
      guard(e);
    }
  }

  // The node's bindings at registrars ([[registration]]); the section
  // stays hidden on a node without any. Polled: states change rarely.
  const REGS_EVERY_MS = 10000;
  let regsTimer = null;

  async function loadRegistrations() {
    let list = [];
    try {
      const data = await api('GET', '/v1/registrations');
      list = (data && data.registrations) || [];
    } catch (e) {
      if (guard(e)) return;
    }
    $('regs-section').hidden = list.length === 0;
    $('regs').replaceChildren(...list.map((r) => {
      const li = document.createElement('li');
      li.className = `reg ${r.state}`;
      let text = `${r.name}: ${r.state}`;
      if (r.state === 'registered' && r.expiresInSecs != null) text += `, ${r.expiresInSecs} s left`;
      if (r.lastError) text += ` (${r.lastError})`;
      li.textContent = text;
      return li;
    }));
  }

  function watchRegistrations() {
    loadRegistrations();
    if (!regsTimer) regsTimer = window.setInterval(loadRegistrations, REGS_EVERY_MS);
  }

  function unwatchRegistrations() {
    if (regsTimer) window.clearInterval(regsTimer);
    regsTimer = null;
    $('regs-section').hidden = true;
  }

  // Puts a call where its state says; `speak` announces a change.
  function upsert(v, speak) {
    if (!v || typeof v.callId !== 'string') return;
    if (pageCard && pageCard.id === v.callId) pageCard.update(v);
    if (v.state === 'ended') {
      const card = cards.get(v.callId);
      if (card) {
        // Focus inside a card that goes away would fall to the page's top.
        const hadFocus = card.root.contains(document.activeElement);
        card.root.remove();
        if (hadFocus) $('ended-h').focus();
        cards.delete(v.callId);
        if (speak) announce(`Call from ${v.from} ended: ${v.endReason || 'ended'}.`);
      }
      ended.delete(v.callId);
      ended.set(v.callId, v);
      renderEnded();
      pruneGroups();
      renderCounts();
      return;
    }
    let card = cards.get(v.callId);
    const before = card ? card.view.state : null;
    if (!card) {
      card = makeCard(v, 'list');
      cards.set(v.callId, card);
    }
    card.update(v);
    place(card);
    if (speak && before !== v.state) {
      if (v.state === 'held' && !before) announce(`${v.from} is on hold at ${v.entry}.`);
      else if (v.state === 'held') announce(`${v.from} is back on hold.`);
      else if (v.state === 'bridged') announce(`${v.from} is in the room ${v.target || ''}.`);
    }
    pruneGroups();
    renderCounts();
  }

  const isHeld = (s) => s === 'held' || s === 'announcing';

  function place(card) {
    // Moving a node drops the focus inside it: put it back.
    const focused = card.root.contains(document.activeElement) ? document.activeElement : null;
    movePlace(card);
    if (focused && document.activeElement !== focused && !focused.hidden) focused.focus();
  }

  function movePlace(card) {
    const v = card.view;
    if (isHeld(v.state)) {
      const g = group(v.entry);
      card.setLevel(4);
      // Oldest first (the queue's order), or by position when known.
      const order = [...g.list.children].filter((c) => c !== card.root);
      const key = (view) => (typeof view.position === 'number' ? view.position : 0) * 1e15 + view.createdAt;
      const after = order.find((c) => key(c._view) > key(v));
      if (card.root.parentNode !== g.list || card.root.nextSibling !== (after || null)) {
        g.list.insertBefore(card.root, after || null);
      }
    } else if (card.root.parentNode !== $('bridged')) {
      card.setLevel(3);
      $('bridged').append(card.root);
    }
  }

  function group(entry) {
    let g = groups.get(entry);
    if (g) return g;
    const hid = nextId('entry');
    const heading = el('h3', { id: hid });
    const list = el('ul', { class: 'calls' });
    const section = el('section', { class: 'group', 'aria-labelledby': hid }, heading, list);
    g = { section, list, heading, entry };
    groups.set(entry, g);
    // Entries in name order, so that they do not jump around.
    const after = [...groups.values()].filter((o) => o !== g && o.section.parentNode)
      .sort((a, b) => a.entry.localeCompare(b.entry)).find((o) => o.entry.localeCompare(entry) > 0);
    $('held').insertBefore(section, after ? after.section : null);
    return g;
  }

  function pruneGroups() {
    for (const [entry, g] of groups) {
      if (g.list.children.length === 0) {
        g.section.remove();
        groups.delete(entry);
      } else {
        const n = g.list.children.length;
        g.heading.textContent = `${entry} (${n} waiting)`;
      }
    }
  }

  function renderCounts() {
    let held = 0;
    let bridged = 0;
    for (const c of cards.values()) {
      if (isHeld(c.view.state)) held += 1;
      else bridged += 1;
    }
    $('held-count').textContent = `(${held})`;
    $('bridged-count').textContent = `(${bridged})`;
    $('held-empty').hidden = held > 0;
    $('bridged-empty').hidden = bridged > 0;
  }

  function renderEnded() {
    const rows = [...ended.values()].sort((a, b) => (b.endedAt || 0) - (a.endedAt || 0));
    for (const old of rows.slice(MAX_ENDED)) ended.delete(old.callId);
    $('ended-rows').replaceChildren(...rows.slice(0, MAX_ENDED).map((v) => el('tr', { 'data-call-id': v.callId },
      el('th', { scope: 'row' }, el('a', { href: callHref(v.callId), text: v.from || '(unknown)' })),
      el('td', { text: v.entry }),
      el('td', { text: v.endedAt ? fmtTime(v.endedAt) : '' }),
      el('td', { class: 'outcome', text: v.endReason || v.state || '' }),
      el('td', { text: fmtDur(v.talkMs || 0) }))));
    $('ended-empty').hidden = ended.size > 0;
  }

  const callHref = (id) => `#call/${encodeURIComponent(id)}`;

  // One refresh per call at a time; events that come meanwhile ask for
  // one more, so a burst costs two fetches, not one per event.
  const refreshing = new Map();

  async function refresh(id) {
    if (refreshing.has(id)) {
      refreshing.set(id, true);
      return;
    }
    refreshing.set(id, false);
    try {
      do {
        refreshing.set(id, false);
        try {
          upsert(await api('GET', `/v1/calls/${encodeURIComponent(id)}`), true);
        } catch (e) {
          if (guard(e)) return;
          if (e.status === 404) {
            const card = cards.get(id);
            if (card) card.root.remove();
            cards.delete(id);
            pruneGroups();
            renderCounts();
          }
        }
      } while (refreshing.get(id));
    } finally {
      refreshing.delete(id);
    }
    if (pageCard && pageCard.id === id) pageCard.reloadDetails();
  }

  // ------------------------------------------------------- event stream

  let streamCtl = null;
  let streamGen = 0;
  let lastEventId = null;
  let retryMs = 2000;
  let lastHeard = 0;

  function setConn(text) {
    $('conn').textContent = text;
  }

  function startStream() {
    stopStream();
    lastEventId = null;
    const gen = ++streamGen;
    runStream(gen);
  }

  function stopStream() {
    streamGen += 1;
    if (streamCtl) streamCtl.abort();
    streamCtl = null;
  }

  async function runStream(gen) {
    let drops = 0;
    while (token && gen === streamGen) {
      const ctl = new AbortController();
      streamCtl = ctl;
      try {
        const headers = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
        if (lastEventId) headers['Last-Event-ID'] = lastEventId;
        const r = await fetch('/v1/events', { headers, signal: ctl.signal, cache: 'no-store' });
        if (r.status === 401) {
          signOut('The node no longer accepts this token. Sign in again.');
          return;
        }
        if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
        if (drops > 0) reloadCalls(); // what changed while we were away
        setConn('Live');
        lastHeard = Date.now();
        await readFrames(r.body.getReader(), gen);
      } catch (_) {
        // Dropped or refused: reconnect below.
      }
      if (gen !== streamGen || !token) return;
      drops += 1;
      setConn('Connection lost; reconnecting…');
      await new Promise((ok) => window.setTimeout(ok, retryMs));
    }
  }

  async function readFrames(reader, gen) {
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done || gen !== streamGen) return;
      lastHeard = Date.now();
      buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        onFrame(frame);
      }
    }
  }

  // One Server-Sent Events frame: `field: value` lines; `:` comments.
  function onFrame(frame) {
    let event = 'message';
    const data = [];
    for (const line of frame.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') lastEventId = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (event === 'gap') {
      // Events were missed: take the node's word for where calls are.
      reloadCalls();
      return;
    }
    if (data.length === 0) return;
    let ev;
    try { ev = JSON.parse(data.join('\n')); } catch (_) { return; }
    onEvent(ev);
  }

  function onEvent(ev) {
    if (!ev || typeof ev.callId !== 'string') return;
    const known = cards.has(ev.callId) || (pageCard && pageCard.id === ev.callId);
    if (!known && typeof ev.timestamp === 'number' && ev.timestamp < snapshotAt - SNAPSHOT_SLACK_MS) return;
    refresh(ev.callId);
  }

  // -------------------------------------------------------------- cards

  // A card shows one call and its actions: on the live lists ('list') or
  // on the call's page ('page'). `update(view)` refreshes what it shows
  // without touching an open form, so typing is never lost to an event.
  function makeCard(v, where) {
    // Buttons name their call to screen readers ("Transfer, +1555…").
    const whoId = nextId('who');
    const heading = el('div', { class: 'who', role: 'heading', 'aria-level': 3, id: whoId });
    const badge = el('span', { class: 'badge' });
    const facts = el('dl', { class: 'facts' });
    const msg = el('p', { class: 'msg', role: 'status', 'aria-live': 'polite' });
    const panel = el('div', { class: 'panel' });
    const btn = (label, cls, on) => el('button', {
      type: 'button', class: cls, text: label, onclick: on, 'aria-describedby': whoId,
    });
    const bTransfer = btn('Transfer', 'act-transfer', () => openTransfer());
    const bHold = btn('Back to hold', 'act-hold', () => backToHold());
    const bPlay = btn('Play a prompt', 'act-play', () => openPlay());
    const bHang = btn('Hang up', 'act-hangup danger', () => openHangup());
    const details = where === 'list'
      ? el('a', { class: 'act-details', href: callHref(v.callId), text: 'Details' })
      : null;
    const actions = el('div', { class: 'actions' }, bTransfer, bHold, bPlay, bHang, details);
    const root = el(where === 'list' ? 'li' : 'div', { class: 'call', 'data-call-id': v.callId },
      el('div', { class: 'call-head' }, heading, badge), facts, actions, panel, msg);
    const card = { id: v.callId, view: v, root, update, setLevel, reloadDetails: () => {} };
    const ticks = {};

    function setLevel(n) { heading.setAttribute('aria-level', n); }

    function update(view) {
      card.view = view;
      root._view = view;
      heading.textContent = view.from || '(unknown caller)';
      badge.textContent = view.state;
      badge.className = `badge state-${view.state}`;
      const rows = [];
      const fact = (name, value, cls) => {
        const dd = el('dd', { class: cls, text: value });
        rows.push(el('dt', { text: name }), dd);
        return dd;
      };
      fact('Entry', view.entry);
      if (isHeld(view.state)) {
        ticks.waited = fact('Waited', fmtDur(now() - view.createdAt), 'waited');
        if (typeof view.position === 'number') fact('Position', String(view.position), 'position');
      } else {
        ticks.waited = null;
      }
      if (view.target) fact(view.state === 'transferring' ? 'Moving to' : 'Room', view.target, 'room');
      // The legs' codecs; two of them differ when the call is transcoded.
      const codecs = view.codecs || {};
      if (codecs.caller) {
        const text = codecs.room && codecs.room !== codecs.caller
          ? `${codecs.caller} ↔ ${codecs.room} (transcoded)`
          : codecs.caller;
        fact('Codec', text, 'codec');
      }
      if (view.state === 'bridged' && view.bridgedAt) {
        ticks.talk = fact('Talk time', fmtDur(now() - view.bridgedAt), 'talk');
      } else {
        ticks.talk = null;
      }
      if (view.state === 'ended') {
        fact('Outcome', view.endReason || 'ended', 'outcome');
        fact('Talk time', fmtDur(view.talkMs || 0));
        fact('On hold', fmtDur(view.holdMs || 0));
      }
      const hdrs = headerPairs(view.sipHeaders);
      if (hdrs.length) {
        const dd = el('dd', { class: 'headers' },
          el('ul', {}, ...hdrs.map(([n, val]) => el('li', {}, el('span', { class: 'hname', text: `${n}: ` }), val))));
        rows.push(el('dt', { text: 'Headers' }), dd);
      }
      facts.replaceChildren(...rows);
      const live = view.state !== 'ended';
      bTransfer.hidden = !(live && (isHeld(view.state) || view.state === 'bridged'));
      bHold.hidden = !(view.state === 'bridged' || view.state === 'transferring');
      bPlay.hidden = !(live && view.state !== 'transferring');
      bHang.hidden = !live;
      if (!live) panel.replaceChildren();
    }

    function tick() {
      const v2 = card.view;
      if (ticks.waited) ticks.waited.textContent = fmtDur(now() - v2.createdAt);
      if (ticks.talk && v2.bridgedAt) ticks.talk.textContent = fmtDur(now() - v2.bridgedAt);
    }
    card.tick = tick;

    // Opens `form` in the panel (one at a time) and focuses its first field.
    function open(form) {
      panel.replaceChildren(form);
      setMsg(msg, '');
      const first = form.querySelector('input, textarea, select, button');
      if (first) first.focus();
    }

    function close(focusBack) {
      panel.replaceChildren();
      if (focusBack && !focusBack.hidden) focusBack.focus();
    }

    async function run(what, action, okText) {
      setMsg(msg, `${what}…`);
      try {
        await action();
        setMsg(msg, okText, 'ok');
        refresh(card.id);
        return true;
      } catch (e) {
        if (guard(e)) return false;
        setMsg(msg, `${what} failed: ${failText(e)}`, 'error');
        return false;
      }
    }

    function openTransfer() {
      const uriId = nextId('uri');
      const hId = nextId('hdrs');
      const hintId = nextId('hint');
      const uri = el('input', { id: uriId, class: 'uri', type: 'text', inputmode: 'url', required: true,
        autocomplete: 'off', spellcheck: 'false', placeholder: 'sip:room@example.com' });
      const hdrs = el('textarea', { id: hId, class: 'headers-in', rows: 2, spellcheck: 'false',
        'aria-describedby': hintId, placeholder: 'X-Room-Id: 42' });
      const form = el('form', { class: 'stack', 'aria-label': `Transfer ${card.view.from}` },
        el('label', { for: uriId, text: 'Room SIP URI' }), uri,
        el('label', { for: hId, text: 'Headers (optional)' }), hdrs,
        el('p', { id: hintId, class: 'hint', text: 'One "X-Name: value" per line; X- and User-to-User headers only.' }),
        el('div', { class: 'row' },
          el('button', { type: 'submit', class: 'primary', text: 'Transfer' }),
          el('button', { type: 'button', text: 'Cancel', onclick: () => close(bTransfer) })));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const target = uri.value.trim();
        if (!target) {
          setMsg(msg, 'Enter the room\'s SIP URI.', 'error');
          uri.focus();
          return;
        }
        const headers = {};
        const lines = hdrs.value.split('\n');
        for (let i = 0; i < lines.length; i += 1) {
          const line = lines[i].trim();
          if (!line) continue;
          const colon = line.indexOf(':');
          if (colon <= 0) {
            setMsg(msg, `Headers, line ${i + 1}: write it as "X-Name: value".`, 'error');
            hdrs.focus();
            return;
          }
          headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
        }
        const body = { callId: card.id, callDomain: card.view.callDomain, sipUri: target };
        if (Object.keys(headers).length) body.headers = headers;
        const ok = await run('Transfer', () => api('POST', '/v1/dialin/pinlessCallUpdate', body),
          `Transfer to ${target} under way.`);
        if (ok) close(bHold.hidden ? bHang : bHold);
      });
      open(form);
    }

    function backToHold() {
      run('Back to hold', () => api('POST', `/v1/calls/${encodeURIComponent(card.id)}/hold`),
        'Back on hold music.');
    }

    function openHangup() {
      const yes = el('button', { type: 'button', class: 'danger act-hangup-confirm', text: 'Hang up now' });
      const form = el('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm hang-up' },
        el('p', { text: `Hang up the call from ${card.view.from}?` }),
        el('div', { class: 'row' }, yes,
          el('button', { type: 'button', text: 'Keep the call', onclick: () => close(bHang) })));
      yes.addEventListener('click', async () => {
        const ok = await run('Hang-up', () => api('DELETE', `/v1/calls/${encodeURIComponent(card.id)}`),
          'Hanging up.');
        if (ok) panel.replaceChildren();
      });
      open(form);
      yes.focus();
    }

    function openPlay() {
      const aId = nextId('audio');
      const tId = nextId('then');
      const audio = el('input', { id: aId, class: 'audio', type: 'text', required: true, autocomplete: 'off',
        spellcheck: 'false', placeholder: 'https://example.com/prompt.wav' });
      const then = el('select', { id: tId, class: 'then' },
        el('option', { value: 'hold', text: 'back to hold music' }),
        el('option', { value: 'hangup', text: 'hang up' }));
      const form = el('form', { class: 'stack', 'aria-label': `Play a prompt to ${card.view.from}` },
        el('label', { for: aId, text: 'Audio (file on the node or http(s) URL)' }), audio,
        el('label', { for: tId, text: 'Then' }), then,
        el('div', { class: 'row' },
          el('button', { type: 'submit', class: 'primary', text: 'Play' }),
          el('button', { type: 'button', text: 'Cancel', onclick: () => close(bPlay) })));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        if (!audio.value.trim()) {
          setMsg(msg, 'Enter the audio to play.', 'error');
          audio.focus();
          return;
        }
        const ok = await run('Play', () => api('POST', `/v1/calls/${encodeURIComponent(card.id)}/play`,
          { audio: audio.value.trim(), then: then.value }), 'Playing.');
        if (ok) close(bPlay);
      });
      open(form);
    }

    update(v);
    return card;
  }

  window.setInterval(() => {
    for (const c of cards.values()) c.tick();
    if (pageCard) pageCard.tick();
    // A stream silent for too long is dead: abort it, runStream reconnects.
    if (streamCtl && lastHeard && Date.now() - lastHeard > STREAM_SILENCE_MS) {
      lastHeard = Date.now();
      streamCtl.abort();
    }
  }, 1000);

  // ------------------------------------------------------------ call page

  let pageCard = null;

  async function showCall(id) {
    $('live').hidden = true;
    $('call').hidden = false;
    $('call-h').textContent = 'Call';
    $('call-body').replaceChildren(el('p', { class: 'hint', text: 'Loading…' }));
    $('timeline').replaceChildren();
    $('ladder').replaceChildren();
    $('recording').replaceChildren();
    dropRecording();
    pageCard = null;
    let v;
    try {
      v = await api('GET', `/v1/calls/${encodeURIComponent(id)}`);
    } catch (e) {
      if (guard(e)) return;
      v = ended.get(id); // an older call the node forgot: its record
      if (!v) {
        $('call-body').replaceChildren(el('p', { class: 'msg error', text: `This call cannot be shown (${failText(e)}).` }));
        return;
      }
    }
    const card = makeCard(v, 'page');
    card.setLevel(3);
    pageCard = card;
    $('call-h').textContent = `Call from ${v.from}`;
    const meta = el('dl', { class: 'facts' },
      el('dt', { text: 'Call ID' }), el('dd', { class: 'mono', text: v.callId }),
      el('dt', { text: 'To' }), el('dd', { text: v.to || '' }),
      el('dt', { text: 'Started' }), el('dd', { text: fmtTime(v.createdAt) }));
    $('call-body').replaceChildren(card.root, meta);
    let timer = null;
    card.reloadDetails = () => {
      // Several events in a row: one reload.
      window.clearTimeout(timer);
      timer = window.setTimeout(() => { if (pageCard === card) loadLadder(card.id); }, 300);
    };
    const baseUpdate = card.update;
    let ready = readyCount(v);
    card.update = (view) => {
      baseUpdate(view);
      renderTimeline(view);
      // A recording just finished: the player gets the whole file.
      const now = readyCount(view);
      if (now !== ready) { ready = now; loadRecording(card.id); }
    };
    renderTimeline(v);
    loadLadder(id);
    loadRecording(id);
    $('call-h').focus();
  }

  function renderTimeline(v) {
    const events = v.timeline || [];
    const t0 = events.length ? events[0].at : 0;
    $('timeline').replaceChildren(...events.map((e) => el('li', { class: 'event' },
      el('time', { text: `${fmtTimeMs(e.at)} (+${((e.at - t0) / 1000).toFixed(3)} s)` }),
      ' ',
      el('span', { class: 'ename', text: e.event }),
      e.detail !== undefined && e.detail !== null
        ? el('span', { class: 'detail', text: ` ${typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail)}` })
        : null)));
  }

  // ------------------------------------------------------------ recording

  // The object URL of the audio shown, freed when another replaces it.
  let recordingUrl = null;

  function dropRecording() {
    if (recordingUrl) URL.revokeObjectURL(recordingUrl);
    recordingUrl = null;
  }

  const readyCount = (v) => (v.timeline || []).filter((e) => e.event === 'call.recording_ready').length;

  // The call's latest recording as a player: fetched with the token (an
  // audio element cannot send one), then played from memory.
  async function loadRecording(id) {
    let r;
    try {
      r = await fetch(`/v1/calls/${encodeURIComponent(id)}/recording`, {
        headers: { Authorization: `Bearer ${token}` },
        cache: 'no-store',
      });
    } catch (e) {
      $('recording').replaceChildren(el('p', { class: 'empty', text: `The recording could not be loaded (${e.message}).` }));
      return;
    }
    if (!pageCard || pageCard.id !== id) return;
    if (r.status === 401) { signOut('The node no longer accepts this token. Sign in again.'); return; }
    if (!r.ok) {
      $('recording').replaceChildren(el('p', { class: 'empty', text: r.status === 404
        ? 'This call was not recorded on this node.'
        : `The recording could not be loaded (${r.status}).` }));
      return;
    }
    const blob = await r.blob();
    if (!pageCard || pageCard.id !== id) return;
    dropRecording();
    recordingUrl = URL.createObjectURL(blob);
    const name = `${r.headers.get('x-recording-id') || id}.wav`;
    $('recording').replaceChildren(
      el('audio', { controls: '', preload: 'metadata', src: recordingUrl, 'aria-label': `Recording ${name}` }),
      el('p', { class: 'hint' }, el('a', { href: recordingUrl, download: name, text: `Download ${name}` }),
        ` (${(blob.size / 1024).toFixed(0)} KiB)`));
  }

  async function loadLadder(id) {
    let trace;
    try {
      trace = await api('GET', `/v1/calls/${encodeURIComponent(id)}/sip`);
    } catch (e) {
      if (guard(e)) return;
      $('ladder').replaceChildren(el('p', { class: 'empty', text: e.status === 404
        ? 'No SIP trace for this call.'
        : `The SIP trace could not be loaded (${failText(e)}).` }));
      return;
    }
    if (!pageCard || pageCard.id !== id) return;
    // Keep the open message open across a reload.
    const openAt = [...$('ladder').querySelectorAll('button[aria-expanded="true"]')].map((b) => b.dataset.n);
    $('ladder').replaceChildren(drawLadder(trace, new Set(openAt)));
  }

  // The ladder: three lifelines (caller, pinless, room) and one arrow per
  // message between two of them. Rows are a CSS grid: time | caller–pinless
  // lane | pinless–room lane; each arrow is a button showing its message.
  function drawLadder(trace, openAt) {
    const msgs = (trace && trace.messages) || [];
    if (!msgs.length) return el('p', { class: 'empty', text: 'No SIP messages were kept for this call.' });
    const t0 = msgs[0].at;
    const peer = (leg) => (msgs.find((m) => m.leg === leg) || {}).peer || '';
    const party = (name, addr, cls) => el('span', { class: `party ${cls}` }, name,
      addr ? el('small', { text: addr }) : null);
    const head = el('div', { class: 'lrow lhead', 'aria-hidden': 'true' },
      el('span', { class: 't', text: 's' }),
      el('div', { class: 'lane a' }, party('Caller', peer('caller'), 'p-caller')),
      el('div', { class: 'lane b' }, party('pinless', '', 'p-pinless'), party('Room', peer('room'), 'p-room')));
    const list = el('ol', { class: 'ladder-rows' });
    msgs.forEach((m, i) => {
      const toRoom = m.leg === 'room';
      const rightward = toRoom ? m.direction === 'out' : m.direction === 'in';
      const from = toRoom ? (m.direction === 'out' ? 'pinless' : 'room') : (m.direction === 'in' ? 'caller' : 'pinless');
      const to = toRoom ? (m.direction === 'out' ? 'room' : 'pinless') : (m.direction === 'in' ? 'pinless' : 'caller');
      const line = String(m.startLine || '');
      const response = line.startsWith('SIP/');
      const code = response ? Number(line.split(' ')[1]) : 0;
      const kind = response ? (code >= 300 ? 'fail' : 'resp') : 'req';
      const detailId = nextId('sipmsg');
      const offset = `+${((m.at - t0) / 1000).toFixed(3)}`;
      const expanded = openAt.has(String(i));
      const arrow = el('button', {
        type: 'button',
        class: `arrow ${rightward ? 'to-right' : 'to-left'} ${kind}`,
        'aria-expanded': expanded ? 'true' : 'false',
        'aria-controls': detailId,
        'data-n': String(i),
      },
      el('span', { class: 'sr-only', text: `${offset} s, ${from} to ${to}: ` }),
      el('span', { class: 'label', text: line }),
      el('span', { class: 'line', 'aria-hidden': 'true' }));
      const text = [line, ...(m.headers || []).map(([n, val]) => `${n}: ${val}`)].join('\n');
      const body = m.body ? `\n\n${m.body}${m.bodyTruncated ? '\n[… body cut]' : ''}` : '';
      const detail = el('li', { class: 'ldetail', id: detailId, hidden: !expanded },
        el('p', { class: 'hint', text: `${fmtTimeMs(m.at)} · ${from} → ${to} · ${m.peer || ''} · ${m.transport || ''}` }),
        el('pre', { text: text + body }));
      arrow.addEventListener('click', () => {
        const now2 = arrow.getAttribute('aria-expanded') !== 'true';
        arrow.setAttribute('aria-expanded', now2 ? 'true' : 'false');
        detail.hidden = !now2;
      });
      const laneA = el('div', { class: 'lane a' });
      const laneB = el('div', { class: 'lane b' });
      (toRoom ? laneB : laneA).append(arrow);
      list.append(el('li', { class: 'lrow' }, el('span', { class: 't', 'aria-hidden': 'true', text: offset }), laneA, laneB), detail);
    });
    const wrap = el('div', { class: 'ladder' }, head, list);
    if (trace.truncated) wrap.append(el('p', { class: 'hint', text: 'The trace was cut: only the first messages of this call were kept.' }));
    return wrap;
  }

  // -------------------------------------------------------------- routing

  function route() {
    if (!token) {
      showSignIn();
      return;
    }
    const m = /^#call\/(.+)$/.exec(location.hash);
    if (m) {
      let id;
      try { id = decodeURIComponent(m[1]); } catch (_) { id = m[1]; }
      showCall(id);
      return;
    }
    pageCard = null;
    $('call').hidden = true;
    $('live').hidden = false;
  }

  // ----------------------------------------------------------------- start

  function start() {
    $('signin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      if (!t) {
        setMsg($('signin-msg'), 'Enter an API token.', 'error');
        $('token').focus();
        return;
      }
      signIn(t);
    });
    $('signin-fields').disabled = false;
    $('signout').addEventListener('click', () => signOut());
    window.addEventListener('hashchange', () => {
      const wasCall = !$('call').hidden;
      route();
      if (wasCall && $('call').hidden && token) $('main').focus();
    });
    renderCounts();
    renderEnded();
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved);
    else {
      showSignIn();
      $('token').focus();
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
