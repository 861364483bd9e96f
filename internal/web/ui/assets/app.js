// Glimpse web interface: a small single-page app over the public API.
// Routes live in the URL fragment: #/upload, #/images?…, #/image/{id},
// #/dashboard. Live updates come from GET /v1/events (server-sent events).

import { PALETTE, fmtNum, hbars, histogram, lineChart, noData, stackedBars } from './charts.js';

const KEY_STORE = 'glimpse.apiKey';
const FEATURES = ['labels', 'qr', 'exif', 'faces', 'colors', 'quality', 'phash', 'thumbnail'];
const FEATURE_NAMES = { labels: 'Labels', qr: 'QR codes', exif: 'EXIF', faces: 'Faces', colors: 'Colours', quality: 'Quality', phash: 'Near-duplicates', thumbnail: 'Thumbnail' };
// Files above this size go straight to storage through a pre-signed URL.
const PRESIGN_ABOVE = 4 << 20;

const $ = (sel, root = document) => root.querySelector(sel);

// ---------- API access ----------

class ApiError extends Error {
  // retryAfter is the Retry-After of a 429 or 503, in seconds (0 when none).
  constructor(status, message, retryAfter = 0) { super(message); this.status = status; this.retryAfter = retryAfter; }
}

// retryAfterSeconds reads a Retry-After header given in seconds.
function retryAfterSeconds(v) {
  const n = parseInt(v || '', 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 60) : 0;
}

// MAX_BUSY_RETRIES is how often an upload told to come back later (429,
// or 503 with Retry-After) is sent again before the row shows the error.
const MAX_BUSY_RETRIES = 8;

function apiKey() { return localStorage.getItem(KEY_STORE) || ''; }

function authHeaders(h = new Headers()) {
  const k = apiKey();
  if (k) h.set('Authorization', 'Bearer ' + k);
  return h;
}

// problemText turns an error response into plain words: the detail of an
// application/problem+json body when there is one.
async function problemText(res) {
  let detail = '';
  try {
    const text = await res.text();
    try {
      const p = JSON.parse(text);
      detail = p.detail || p.title || '';
    } catch { detail = text.trim().slice(0, 300); }
  } catch { /* body unreadable */ }
  return detail || `The server answered ${res.status} ${res.statusText}.`;
}

function problemFromXHR(xhr) {
  try {
    const p = JSON.parse(xhr.responseText);
    if (p.detail || p.title) return p.detail || p.title;
  } catch { /* not JSON */ }
  return xhr.status ? `The server answered ${xhr.status} ${xhr.statusText}.` : 'Could not reach the server. Check the connection and try again.';
}

async function api(path, opts = {}) {
  const headers = authHeaders(new Headers(opts.headers || {}));
  let res;
  try {
    res = await fetch(path, { ...opts, headers });
  } catch {
    throw new ApiError(0, 'Could not reach the server. Check the connection and try again.');
  }
  if (!res.ok) {
    const msg = await problemText(res);
    if (res.status === 401) askSignIn(msg);
    throw new ApiError(res.status, msg, retryAfterSeconds(res.headers.get('Retry-After')));
  }
  return res;
}

async function apiJSON(path, opts) { return (await api(path, opts)).json(); }

// blobURLs caches object URLs of images fetched with the API key (an <img>
// cannot send the Authorization header).
const blobURLs = new Map();
async function imageURL(path) {
  if (blobURLs.has(path)) return blobURLs.get(path);
  const p = api(path).then((r) => r.blob()).then((b) => URL.createObjectURL(b));
  blobURLs.set(path, p);
  p.catch(() => blobURLs.delete(path));
  return p;
}

function showThumb(img, image) {
  if (!image || !image.result || !image.result.thumbnail) { img.hidden = true; return; }
  imageURL(`/v1/images/${image.id}/thumbnail`).then((u) => { img.src = u; img.hidden = false; }, () => { img.hidden = true; });
}

// ---------- messages ----------

function showError(msg) {
  $('#banner-text').textContent = msg;
  $('#banner').hidden = false;
}
function clearError() { $('#banner').hidden = true; }

function report(err) {
  if (err instanceof ApiError && err.status === 401) return; // the sign-in dialog says it
  showError(err && err.message ? err.message : String(err));
}

// ---------- sign-in ----------

let signInWaiters = [];
function askSignIn(why) {
  const d = $('#signin');
  $('#signin-why').textContent = apiKey() ? `The API key was refused: ${why}` : 'This server needs an API key.';
  if (!d.open) d.showModal();
  $('#signin-key').focus();
  return new Promise((resolve) => signInWaiters.push(resolve));
}

function setupSignIn() {
  $('#signin-form').addEventListener('submit', () => {
    const k = $('#signin-key').value.trim();
    if (!k) return;
    localStorage.setItem(KEY_STORE, k);
    $('#signin-key').value = '';
    $('#signout').hidden = false;
    const ws = signInWaiters; signInWaiters = [];
    ws.forEach((w) => w());
    live.restart();
    route();
  });
  $('#signin').addEventListener('cancel', (e) => e.preventDefault());
  $('#signout').hidden = !apiKey();
  $('#signout').addEventListener('click', () => {
    localStorage.removeItem(KEY_STORE);
    $('#signout').hidden = true;
    live.restart();
    route();
  });
}

// ---------- live updates (server-sent events) ----------

const live = {
  es: null,
  listeners: new Set(),
  latest: new Map(), // image id → latest image seen
  retry: null,
  start() {
    const k = apiKey();
    const url = '/v1/events' + (k ? '?key=' + encodeURIComponent(k) : '');
    const es = new EventSource(url);
    this.es = es;
    es.addEventListener('ready', () => { setLive('on'); this.emit({ type: 'ready' }); });
    es.addEventListener('resync', () => this.emit({ type: 'ready' }));
    es.addEventListener('image', (ev) => {
      let img;
      try { img = JSON.parse(ev.data); } catch { return; }
      this.remember(img);
      this.emit({ type: 'image', image: img });
    });
    es.addEventListener('error', () => {
      setLive('off');
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the stream (401?) or is gone: find out, then retry.
        clearTimeout(this.retry);
        this.retry = setTimeout(() => {
          api('/v1/images?limit=1').then(() => this.restart(), () => {});
        }, 3000);
      }
    });
  },
  restart() { if (this.es) this.es.close(); clearTimeout(this.retry); this.start(); },
  // remember keeps the most advanced state of each image: a terminal status
  // is never replaced by an older, non-terminal one.
  remember(img) {
    const old = this.latest.get(img.id);
    if (old && terminal(old.status) && !terminal(img.status)) return old;
    this.latest.set(img.id, img);
    return img;
  },
  emit(ev) { for (const f of this.listeners) { try { f(ev); } catch (e) { report(e); } } },
  on(f) { this.listeners.add(f); return () => this.listeners.delete(f); },
};

function setLive(state) {
  const el = $('#live');
  el.className = 'live ' + state;
  el.title = state === 'on' ? 'Live updates: connected' : 'Live updates: reconnecting';
}

const terminal = (s) => s === 'done' || s === 'failed';

// ---------- formatting ----------

function pct(v) { return (v * 100).toFixed(v >= 0.995 || v < 0.1 ? 1 : 0) + '%'; }
function bytes(n) {
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MB';
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(0) + ' KB';
  return n + ' B';
}
function topLabel(img) {
  const l = img.result && img.result.labels && img.result.labels[0];
  return l ? `${l.label} ${pct(l.score)}` : '';
}
function qrURL(img) {
  const c = img.result && img.result.qr && img.result.qr.find((q) => q.url);
  return c ? c.text : '';
}
function place(exif) {
  if (!exif || exif.latitude == null || exif.longitude == null) return '';
  return `${exif.latitude.toFixed(4)}, ${exif.longitude.toFixed(4)}`;
}
function takenText(img) {
  const e = img.result && img.result.exif;
  if (!e) return '';
  return [e.taken_at ? e.taken_at.replace('T', ' ') : '', place(e)].filter(Boolean).join(' · ');
}
function setBadge(el, status) {
  el.textContent = status;
  el.className = 'badge ' + status;
}
function safeHref(text) {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : '';
  } catch { return ''; }
}
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v; else e[k] = v;
  }
  e.append(...children);
  return e;
}
function template(id) { return $('#' + id).content.firstElementChild.cloneNode(true); }

// ---------- router ----------

let leave = null; // cleanup of the current page

function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = h.split('?');
  return { parts: path.split('/').filter(Boolean), query: new URLSearchParams(query) };
}

function route() {
  if (leave) { try { leave(); } catch { /* ignore */ } leave = null; }
  clearError();
  const { parts, query } = parseHash();
  const page = parts[0] || 'upload';
  for (const a of document.querySelectorAll('.top nav a')) {
    a.classList.toggle('active', a.dataset.route === page || (page === 'image' && a.dataset.route === 'images'));
  }
  const main = $('#main');
  let result;
  switch (page) {
    case 'images': result = imagesPage(main, query); break;
    case 'image': result = detailPage(main, parts[1] || ''); break;
    case 'dashboard': result = dashboardPage(main); break;
    default: result = uploadPage(main);
  }
  leave = result || null;
}

// ---------- upload page ----------

// The upload queue outlives the page so that going to another page and
// back keeps the session's uploads.
const queue = [];
let uploadPageEl = null;

function selectedFeatures() {
  const boxes = document.querySelectorAll('#feature-boxes input:checked');
  return [...boxes].map((b) => b.value);
}

function uploadPage(main) {
  const page = template('tpl-upload');
  main.replaceChildren(page);
  uploadPageEl = page;

  const saved = JSON.parse(localStorage.getItem('glimpse.features') || 'null') || FEATURES;
  const boxes = $('#feature-boxes', page);
  for (const f of FEATURES) {
    const cb = el('input', { type: 'checkbox', value: f, checked: saved.includes(f), name: 'feature' });
    cb.addEventListener('change', () => localStorage.setItem('glimpse.features', JSON.stringify(selectedFeatures())));
    boxes.append(el('label', {}, cb, FEATURE_NAMES[f]));
  }

  // Tabs.
  const cam = camera(page);
  for (const t of page.querySelectorAll('.tab')) {
    t.addEventListener('click', () => {
      for (const o of page.querySelectorAll('.tab')) o.setAttribute('aria-selected', String(o === t));
      for (const p of page.querySelectorAll('.panel')) p.hidden = p.dataset.panel !== t.dataset.tab;
      if (t.dataset.tab !== 'camera') cam.stop();
    });
  }

  // Files: picker and drag-and-drop.
  const input = $('#file-input', page);
  input.addEventListener('change', () => { enqueue([...input.files]); input.value = ''; });
  const drop = $('#drop', page);
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    enqueue([...e.dataTransfer.files]);
  });

  for (const item of queue) renderQueueItem(item);
  updateQueueEmpty();
  const off = live.on(onUploadEvent);
  return () => { off(); cam.stop(); uploadPageEl = null; };
}

function updateQueueEmpty() {
  if (uploadPageEl) $('#queue-empty', uploadPageEl).hidden = queue.length > 0;
}

function enqueue(files) {
  const features = selectedFeatures();
  for (const file of files) {
    const item = { file, name: file.name || 'upload', size: file.size, features, progress: 0, state: 'uploading', info: 'waiting…', image: null, row: null };
    queue.unshift(item);
    renderQueueItem(item, true);
    send(item);
  }
  updateQueueEmpty();
}

function renderQueueItem(item, prepend = false) {
  if (!uploadPageEl) return;
  const list = $('#queue', uploadPageEl);
  if (!item.row || !list.contains(item.row)) {
    item.row = template('tpl-upload-row');
    if (prepend) list.prepend(item.row); else list.append(item.row);
  }
  const row = item.row;
  const img = item.image;
  row.dataset.state = img ? img.status : item.state;
  row.dataset.retries = item.retries || 0;
  if (img) row.dataset.id = img.id;
  row.classList.toggle('finished', item.state !== 'uploading');
  row.classList.toggle('failed', item.state === 'error' || (img && img.status === 'failed'));
  const name = $('.qname', row);
  name.textContent = item.name;
  if (img) name.href = '#/image/' + img.id; else name.removeAttribute('href');
  setBadge($('.badge', row), img ? img.status : item.state);
  $('progress', row).value = item.progress;
  let info = item.info;
  if (img) {
    if (img.status === 'done') info = topLabel(img) || 'done';
    else if (img.status === 'failed') info = img.error || 'failed';
    else info = `${bytes(item.size)} sent · ${img.status}`;
  }
  $('.qinfo', row).textContent = info;
  showThumb($('.thumb', row), img);
}

function onUploadEvent(ev) {
  for (const item of queue) {
    if (!item.image) continue;
    if (ev.type === 'image' && ev.image.id === item.image.id) {
      item.image = live.remember(ev.image);
      renderQueueItem(item);
    } else if (ev.type === 'ready' && !terminal(item.image.status)) {
      // Reconnected: catch up on what the stream may have missed.
      apiJSON('/v1/images/' + item.image.id).then((img) => { item.image = live.remember(img); renderQueueItem(item); }, () => {});
    }
  }
}

// xhrSend sends body with XMLHttpRequest, for its upload progress events.
function xhrSend(method, url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress((100 * e.loaded) / e.total); });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try { resolve(JSON.parse(xhr.responseText)); } catch { reject(new ApiError(xhr.status, 'The server sent an answer that is not JSON.')); }
      } else {
        reject(new ApiError(xhr.status, problemFromXHR(xhr), retryAfterSeconds(xhr.getResponseHeader('Retry-After'))));
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'Could not reach the server. Check the connection and try again.')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'The upload was cancelled.')));
    xhr.send(body);
  });
}

async function send(item, tries = 0) {
  const progress = (p) => { item.progress = p; item.info = `${Math.round(p)}% of ${bytes(item.size)}`; renderQueueItem(item); };
  try {
    let img;
    if (item.size > PRESIGN_ABOVE) {
      item.info = 'asking for an upload URL…';
      renderQueueItem(item);
      const ticket = await apiJSON('/v1/uploads', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ filename: item.name, content_type: item.file.type || 'application/octet-stream', size: item.size, features: item.features }),
      });
      img = await xhrSend(ticket.method, ticket.upload_url, item.file, ticket.headers || {}, progress);
    } else {
      const form = new FormData();
      form.append('file', item.file, item.name);
      const q = item.features.length ? '?features=' + encodeURIComponent(item.features.join(',')) : '';
      img = await xhrSend('POST', '/v1/images' + q, form, Object.fromEntries(authHeaders().entries()), progress);
    }
    item.progress = 100;
    item.state = 'sent';
    item.image = live.remember(img);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      item.info = 'needs an API key…';
      renderQueueItem(item);
      await askSignIn(err.message);
      return send(item);
    }
    // Busy (rate limit, upload cap, or a dependency down): wait as told and
    // send again, a few times, instead of failing the row at once.
    const busy = err instanceof ApiError && (err.status === 429 || (err.status === 503 && err.retryAfter > 0));
    if (busy && tries < MAX_BUSY_RETRIES) {
      const wait = err.retryAfter || Math.min(2 ** tries, 30);
      item.progress = 0;
      item.info = `the server is busy; sending again in ${wait} s…`;
      item.retries = tries + 1;
      renderQueueItem(item);
      await new Promise((r) => setTimeout(r, wait * 1000));
      return send(item, tries + 1);
    }
    item.state = 'error';
    item.info = err.message || String(err);
  }
  renderQueueItem(item);
}

// camera drives the Camera tab: getUserMedia → <video> → canvas → JPEG.
function camera(page) {
  const video = $('#camera-video', page), shot = $('#camera-shot', page);
  const start = $('#camera-start', page), take = $('#camera-take', page), msg = $('#camera-msg', page);
  let stream = null;
  const stop = () => {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    take.disabled = true;
    start.textContent = 'Start camera';
  };
  start.addEventListener('click', async () => {
    if (stream) { stop(); return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      msg.textContent = 'This browser offers no camera here. Cameras work on https:// pages and on localhost.';
      return;
    }
    msg.textContent = 'Asking for the camera…';
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment', width: { ideal: 1280 } }, audio: false });
      video.srcObject = stream;
      await video.play().catch(() => {});
      take.disabled = false;
      start.textContent = 'Stop camera';
      msg.textContent = 'Point the camera and take a picture; it is sent with the features below.';
    } catch (err) {
      stream = null;
      msg.textContent = err && err.name === 'NotAllowedError'
        ? 'The camera was not allowed. Allow it in the browser and try again.'
        : `The camera could not start (${err && err.name ? err.name : err}).`;
    }
  });
  take.addEventListener('click', () => {
    if (!stream || !video.videoWidth) { msg.textContent = 'The camera is not ready yet.'; return; }
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    canvas.toBlob((blob) => {
      if (!blob) { msg.textContent = 'Could not take the picture.'; return; }
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
      const file = new File([blob], `camera-${stamp}.jpg`, { type: 'image/jpeg' });
      if (shot.src.startsWith('blob:')) URL.revokeObjectURL(shot.src);
      shot.src = URL.createObjectURL(blob);
      shot.hidden = false;
      msg.textContent = 'Picture sent; its result appears below.';
      enqueue([file]);
    }, 'image/jpeg', 0.9);
  });
  return { stop };
}

// ---------- images page ----------

const FILTERS = ['status', 'label', 'qr_url', 'taken_after', 'taken_before', 'near', 'has_faces', 'limit'];

function imagesPage(main, query) {
  const page = template('tpl-images');
  main.replaceChildren(page);
  const form = $('#filters', page);
  for (const f of FILTERS) if (query.has(f)) form.elements[f].value = query.get(f);
  const cursors = []; // cursors of the pages before the current one
  let cursor = query.get('cursor') || '';
  let next = '';
  const rows = new Map(); // id → tr

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const f of FILTERS) { const v = form.elements[f].value.trim(); if (v && !(f === 'limit' && v === '50')) q.set(f, v); }
    location.hash = '#/images' + (q.toString() ? '?' + q : '');
  });
  $('#filters-clear', page).addEventListener('click', () => { setTimeout(() => { location.hash = '#/images'; }, 0); });

  const filterQuery = () => {
    const q = new URLSearchParams();
    for (const f of FILTERS) if (query.get(f)) q.set(f, query.get(f));
    return q;
  };

  const renderRow = (img, flash) => {
    let tr = rows.get(img.id);
    if (!tr) { tr = template('tpl-image-row'); rows.set(img.id, tr); tr.addEventListener('click', (e) => { if (e.target.tagName !== 'A') location.hash = '#/image/' + img.id; }); }
    tr.dataset.id = img.id;
    tr.dataset.status = img.status;
    const a = $('a.name', tr);
    a.textContent = img.filename;
    a.href = '#/image/' + img.id;
    setBadge($('.badge', tr), img.status);
    $('.label', tr).textContent = img.status === 'failed' ? (img.error || '') : topLabel(img);
    $('.qr', tr).textContent = qrURL(img);
    $('.taken', tr).textContent = takenText(img);
    $('.faces', tr).textContent = img.result && img.result.faces ? String(img.result.faces.length) : (img.result && img.features.includes('faces') ? '0' : '');
    showThumb($('.thumb', tr), img);
    if (flash) { tr.classList.remove('flash'); void tr.offsetWidth; tr.classList.add('flash'); }
    return tr;
  };

  const load = async () => {
    const q = filterQuery();
    if (cursor) q.set('cursor', cursor);
    try {
      const list = await apiJSON('/v1/images' + (q.toString() ? '?' + q : ''));
      const body = $('#rows', page);
      rows.clear();
      body.replaceChildren(...list.images.map((img) => renderRow(live.remember(img))));
      next = list.next_cursor || '';
      $('#images-empty', page).hidden = list.images.length > 0;
      $('#page-next', page).disabled = !next;
      $('#page-first', page).disabled = !cursor;
    } catch (err) { report(err); }
  };

  $('#page-next', page).addEventListener('click', () => { cursors.push(cursor); cursor = next; load(); });
  $('#page-first', page).addEventListener('click', () => { cursors.length = 0; cursor = ''; load(); });

  // matches says whether a new image belongs on the first page as filtered.
  const matches = (img) => {
    const st = query.get('status');
    if (st && img.status !== st) return false;
    for (const f of ['label', 'qr_url', 'taken_after', 'taken_before', 'near', 'has_faces']) if (query.get(f)) return false;
    return true;
  };

  const off = live.on((ev) => {
    if (ev.type === 'ready') { load(); return; }
    const img = ev.image;
    const tr = rows.get(img.id);
    if (tr) {
      const st = query.get('status');
      if (st && img.status !== st) { tr.remove(); rows.delete(img.id); return; }
      renderRow(img, true);
    } else if (!cursor && matches(img)) {
      $('#rows', page).prepend(renderRow(img, true));
      $('#images-empty', page).hidden = true;
    }
  });
  load();
  return off;
}

// ---------- image detail page ----------

function detailPage(main, id) {
  const page = template('tpl-detail');
  main.replaceChildren(page);
  let current = null;

  const render = (img) => {
    current = img;
    $('.d-name', page).textContent = img.filename;
    const when = new Date(img.created_at).toLocaleString();
    const dims = img.width && img.height ? `${img.width}×${img.height}` : '';
    $('.d-meta', page).replaceChildren(
      (() => { const b = el('span'); setBadge(b, img.status); return b; })(),
      ` ${[img.content_type, dims, bytes(img.size), 'uploaded ' + when].filter(Boolean).join(' · ')}`,
    );
    $('.d-error', page).hidden = !img.error;
    $('.d-error', page).textContent = img.error ? `Processing failed: ${img.error}` : '';
    const r = img.result || {};
    renderLabels(r);
    renderOverlay(img, r);
    renderCodes(r);
    renderEXIF(r.exif);
    renderColors(r.colors);
    renderQuality(r.quality);
    renderErrors(r.errors);
    $('.d-phash', page).textContent = r.phash ? `perceptual hash ${r.phash}` : '';
    const thumbCard = $('.d-thumb-card', page);
    thumbCard.hidden = !r.thumbnail;
    if (r.thumbnail) {
      $('.d-thumb-size', page).textContent = `${r.thumbnail.width}×${r.thumbnail.height} ${r.thumbnail.content_type}`;
      showThumb($('.d-thumb', page), img);
    }
  };

  const renderLabels = (r) => {
    const box = $('.d-labels', page);
    if (!r.labels || !r.labels.length) { box.replaceChildren(el('p', { class: 'muted small' }, current.status === 'done' ? 'No labels were asked for.' : 'Not ready yet.')); return; }
    box.replaceChildren(...r.labels.map((l) => {
      const fill = el('div', { class: 'fill' });
      fill.style.width = (l.score * 100).toFixed(1) + '%';
      return el('div', { class: 'bar' }, el('span', { class: 'name', title: l.label }, l.label), el('div', { class: 'track' }, fill), el('span', { class: 'num' }, pct(l.score)));
    }));
  };

  const renderOverlay = (img, r) => {
    const svg = $('.overlay', page);
    const w = r.width || img.width, h = r.height || img.height;
    svg.replaceChildren();
    if (!w || !h) return;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    const sw = Math.max(w, h) / 250; // stroke width in image pixels
    const NS = 'http://www.w3.org/2000/svg';
    const mk = (name, attrs) => { const e = document.createElementNS(NS, name); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v)); return e; };
    const legend = [];
    (r.faces || []).forEach((f) => {
      svg.append(mk('rect', { class: 'face', x: f.x, y: f.y, width: f.w, height: f.h, 'stroke-width': sw }));
      const t = mk('text', { x: f.x, y: Math.max(f.y - sw * 2, sw * 8), 'font-size': sw * 8, 'stroke-width': sw / 2 });
      t.textContent = `face ${f.confidence.toFixed(0)}`;
      svg.append(t);
    });
    if (r.faces && r.faces.length) legend.push(`${r.faces.length} face${r.faces.length > 1 ? 's' : ''} (yellow)`);
    (r.qr || []).forEach((c) => {
      const pts = c.points || [];
      if (pts.length >= 3) svg.append(mk('polygon', { class: 'code', points: pts.map((p) => `${p.x},${p.y}`).join(' '), 'stroke-width': sw }));
      else if (pts.length === 2) svg.append(mk('line', { class: 'code', x1: pts[0].x, y1: pts[0].y, x2: pts[1].x, y2: pts[1].y, 'stroke-width': sw * 2 }));
    });
    if (r.qr && r.qr.length) legend.push(`${r.qr.length} code${r.qr.length > 1 ? 's' : ''} (blue)`);
    $('.d-legend', page).textContent = legend.join(' · ');
  };

  // Asked for and empty says so; not asked for is not shown.
  const renderCodes = (r) => {
    $('.d-qr-card', page).hidden = !r.qr;
    if (r.qr && !r.qr.length) {
      $('.d-qr', page).replaceChildren(el('li', { class: 'muted' }, 'No codes found'));
      return;
    }
    $('.d-qr', page).replaceChildren(...(r.qr || []).map((c) => {
      const href = safeHref(c.text);
      const text = href ? el('a', { href, rel: 'noopener noreferrer', target: '_blank' }, c.text) : el('span', {}, c.text);
      return el('li', {}, text, el('span', { class: 'muted small' }, ` ${c.format}`));
    }));
  };

  const kv = (dl, pairs) => {
    dl.replaceChildren(...pairs.filter((p) => p[1] !== '' && p[1] != null).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    return dl.childElementCount > 0;
  };

  const renderEXIF = (e) => {
    $('.d-exif-card', page).hidden = !e;
    if (!e) return;
    const has = kv($('.d-exif', page), [
      ['Taken', e.taken_at ? e.taken_at.replace('T', ' ') : ''],
      ['Place', place(e)],
      ['Altitude', e.altitude != null ? `${e.altitude.toFixed(0)} m` : ''],
      ['Camera', [e.make, e.model].filter(Boolean).join(' ')],
      ['Orientation', e.orientation || ''],
    ]);
    if (!has) $('.d-exif', page).replaceChildren(el('dd', { class: 'muted' }, 'No EXIF metadata'));
  };

  const renderColors = (c) => {
    $('.d-colors-card', page).hidden = !c;
    if (!c) return;
    $('.d-swatches', page).replaceChildren(...(c.dominant || []).map((s) => {
      const chip = el('span', { class: 'chip', title: s.hex });
      chip.style.background = s.hex;
      return el('span', { class: 'swatch' }, chip, el('code', {}, s.hex), el('span', { class: 'muted' }, pct(s.fraction)));
    }));
    kv($('.d-colorfacts', page), [['Brightness', pct(c.brightness)], ['Saturation', pct(c.saturation)]]);
    if (c.histogram && c.histogram.length) histogram($('.d-hist', page), c.histogram);
  };

  const renderQuality = (q) => {
    $('.d-quality-card', page).hidden = !q;
    if (!q) return;
    kv($('.d-quality', page), [
      ['Sharpness', `${fmtNum(q.sharpness)}${q.blurry ? ' (blurry)' : ''}`],
      ['Contrast', q.contrast.toFixed(3)],
      ['Entropy', `${q.entropy.toFixed(2)} bits`],
      ['Exposure', `${q.exposure} (${pct(q.underexposed)} dark, ${pct(q.overexposed)} bright)`],
      ['Resolution', `${q.megapixels.toFixed(1)} MP`],
    ]);
  };

  const renderErrors = (errs) => {
    const has = errs && kv($('.d-errors', page), Object.entries(errs));
    $('.d-errors-card', page).hidden = !has;
  };

  const loadSimilar = async () => {
    const box = $('.d-similar', page);
    if (!current || !current.features.includes('phash') || current.status !== 'done') {
      box.replaceChildren(el('p', { class: 'muted small' }, current && !current.features.includes('phash') ? 'Upload with Near-duplicates to compare.' : 'Not ready yet.'));
      return;
    }
    try {
      const list = await apiJSON(`/v1/images/${id}/similar`);
      if (!list.images.length) { box.replaceChildren(el('p', { class: 'muted small' }, 'None found.')); return; }
      box.replaceChildren(...list.images.map((s) => {
        const t = el('img', { class: 'thumb', alt: s.image.filename });
        showThumb(t, s.image);
        return el('a', { href: '#/image/' + s.image.id, title: s.image.filename }, t, `distance ${s.distance}`);
      }));
    } catch (err) { box.replaceChildren(el('p', { class: 'error small' }, err.message)); }
  };

  const load = async () => {
    try {
      const img = live.remember(await apiJSON('/v1/images/' + encodeURIComponent(id)));
      render(img);
      loadSimilar();
      imageURL(`/v1/images/${img.id}/content`).then((u) => { $('.d-img', page).src = u; }, (err) => report(err));
    } catch (err) {
      $('.d-name', page).textContent = 'Image not available';
      report(err);
    }
  };

  $('.d-json', page).addEventListener('click', () => {
    if (!current) return;
    const blob = new Blob([JSON.stringify(current, null, 2)], { type: 'application/json' });
    const a = el('a', { href: URL.createObjectURL(blob), download: `${current.id}.json` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });
  $('.d-original', page).addEventListener('click', () => {
    imageURL(`/v1/images/${id}/content`).then((u) => window.open(u, '_blank', 'noopener'), report);
  });
  $('.d-delete', page).addEventListener('click', async () => {
    if (!current || !window.confirm(`Delete ${current.filename}? This removes the image and its result.`)) return;
    try {
      await api('/v1/images/' + id, { method: 'DELETE' });
      location.hash = '#/images';
    } catch (err) { report(err); }
  });

  const off = live.on((ev) => {
    if (ev.type === 'ready') { load(); return; }
    if (ev.image.id === id) { render(live.remember(ev.image)); loadSimilar(); }
  });
  load();
  return off;
}

// ---------- dashboard ----------

const RANGES = {
  hour: { bucket: 'minute', span: 3600e3 },
  day: { bucket: 'hour', span: 86400e3 },
  month: { bucket: 'day', span: 30 * 86400e3 },
};

// stats fetches one /v1/stats endpoint; a missing endpoint or an error is
// null, and the chart then says there is no data yet.
async function stats(path) {
  try {
    const res = await fetch(path, { headers: authHeaders() });
    if (res.status === 401) { askSignIn(await problemText(res)); return null; }
    if (!res.ok) return null;
    return await res.json();
  } catch { return null; }
}

function byTime(buckets) { return (buckets || []).map((b) => ({ ...b, ms: Date.parse(b.t) })).filter((b) => !Number.isNaN(b.ms)); }

const BUCKET_MS = { minute: 60e3, hour: 3600e3, day: 86400e3 };

// everyBucket returns the rows of t (byTime) with a zero row added for each
// bucket of the period from..to (ms) that has none: counts the API leaves
// out because nothing happened are drawn as zero, not skipped.
function everyBucket(t, from, to, bucket) {
  const size = BUCKET_MS[bucket];
  if (!size) return t;
  const have = new Map(t.map((b) => [b.ms, b]));
  const out = [...t];
  for (let ms = Math.floor(from / size) * size; ms <= to; ms += size) {
    if (!have.has(ms)) out.push({ ms, done: 0, failed: 0 });
  }
  return out.sort((a, b) => a.ms - b.ms);
}

// stacksOf groups [{t, <key>, count}] into the top n series plus "other".
function stacksOf(buckets, key, n = 7) {
  const rows = byTime(buckets);
  const totals = new Map();
  for (const r of rows) totals.set(r[key], (totals.get(r[key]) || 0) + (r.count || 0));
  const top = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map((e) => e[0]);
  const stacks = top.map((name, i) => ({ name, color: PALETTE[i % PALETTE.length], values: new Map() }));
  const other = { name: 'other', color: '#c3c9d4', values: new Map() };
  for (const r of rows) {
    const s = stacks.find((x) => x.name === r[key]) || other;
    s.values.set(r.ms, (s.values.get(r.ms) || 0) + (r.count || 0));
  }
  if (other.values.size) stacks.push(other);
  return { times: [...new Set(rows.map((r) => r.ms))], stacks };
}

function dashboardPage(main) {
  const page = template('tpl-dashboard');
  main.replaceChildren(page);
  const form = $('#range', page);
  const plot = (id) => $(`#${id} .plot`, page);
  let seq = 0;

  const draw = async () => {
    const my = ++seq;
    const r = RANGES[form.elements.range.value] || RANGES.day;
    const to = new Date(), from = new Date(to.getTime() - r.span);
    const range = `bucket=${r.bucket}&from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
    const [tp, bl, lb, pr, fl] = await Promise.all([
      stats('/v1/stats/throughput?' + range),
      stats(`/v1/stats/backlog?${range}`),
      stats(`/v1/stats/labels?bucket=day&from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`),
      stats(`/v1/stats/products?bucket=day&from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`),
      stats('/v1/stats/failures?' + range),
    ]);
    if (my !== seq) return;
    const t = byTime(tp && tp.buckets);
    const period = { from: from.getTime(), to: to.getTime() };
    if (t.length) {
      const all = everyBucket(t, period.from, period.to, r.bucket);
      lineChart(plot('c-throughput'), { ...period, series: [
        { name: 'done per ' + r.bucket, color: PALETTE[0], points: all.map((b) => [b.ms, b.done || 0]) },
        { name: 'failed per ' + r.bucket, color: PALETTE[1], points: all.map((b) => [b.ms, b.failed || 0]) },
      ] });
      lineChart(plot('c-latency'), { ...period, format: (v) => fmtNum(v) + ' ms', series: [
        { name: 'p50', color: PALETTE[2], points: t.filter((b) => b.p50_ms != null).map((b) => [b.ms, b.p50_ms]) },
        { name: 'p99', color: PALETTE[3], points: t.filter((b) => b.p99_ms != null).map((b) => [b.ms, b.p99_ms]) },
      ] });
    } else { noData(plot('c-throughput')); noData(plot('c-latency')); }
    const b = byTime(bl && bl.buckets);
    if (b.length) {
      lineChart(plot('c-backlog'), { ...period, series: [
        { name: 'backlog (jobs)', color: PALETTE[4], points: b.map((x) => [x.ms, x.backlog || 0]) },
        { name: 'workers (right axis)', color: PALETTE[2], axis: 'right', step: true, dashed: true, points: b.map((x) => [x.ms, x.workers || 0]) },
      ] });
    } else noData(plot('c-backlog'));
    stackedBars(plot('c-labels'), stacksOf(lb && lb.buckets, 'label'));
    stackedBars(plot('c-products'), stacksOf(pr && pr.buckets, 'product'));
    const reasons = ((fl && fl.reasons) || []).map((x) => ({ name: x.reason || 'unknown', value: x.count || 0 })).sort((a, b2) => b2.value - a.value).slice(0, 12);
    hbars(plot('c-failures'), reasons);
  };

  form.elements.range.addEventListener('change', draw);
  $('#dash-refresh', page).addEventListener('click', draw);
  draw().catch(report);
  // Refresh when images finish, at most every 5 s.
  let pending = null;
  const off = live.on((ev) => {
    if (ev.type !== 'image' || !terminal(ev.image.status) || pending) return;
    pending = setTimeout(() => { pending = null; draw().catch(report); }, 5000);
  });
  return () => { off(); clearTimeout(pending); };
}

// ---------- start ----------

function main() {
  for (const o of document.querySelectorAll('.origin')) o.textContent = location.origin;
  $('#banner-close').addEventListener('click', clearError);
  window.addEventListener('unhandledrejection', (e) => report(e.reason));
  setupSignIn();
  window.addEventListener('hashchange', route);
  live.start();
  route();
}

main();
