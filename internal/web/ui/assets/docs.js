// The API reference, rendered in the browser from /openapi.json with no
// code from elsewhere, so it works on a machine without internet. Text goes
// in as text (never as HTML): descriptions mark code with backticks only.

const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) if (k != null && k !== '') e.append(k);
  return e;
};

// prose turns `code` spans into <code> and leaves the rest as text.
const prose = (s, tag = 'p', attrs = {}) => {
  const p = el(tag, attrs);
  String(s || '').split(/(`[^`]*`)/).forEach((part) => {
    p.append(part.startsWith('`') && part.endsWith('`') && part.length > 1 ? el('code', {}, part.slice(1, -1)) : part);
  });
  return p;
};

const refName = (ref) => ref.split('/').pop();

// typeOf describes a schema in a few words: a $ref's name, an array of
// them, a type with its format or enumeration.
const typeOf = (s) => {
  if (!s) return '';
  if (s.$ref) return refName(s.$ref);
  if (s.oneOf) return s.oneOf.map(typeOf).join(' | ');
  let t = Array.isArray(s.type) ? s.type.filter((x) => x !== 'null').join(' | ') : (s.type || 'any');
  if (t === 'array') t = `array of ${typeOf(s.items)}`;
  if (s.format) t += ` (${s.format})`;
  if (s.enum) t += `: ${s.enum.join(', ')}`;
  return t;
};

const schemaLink = (s) => {
  const t = typeOf(s);
  const ref = s && (s.$ref || (s.items && s.items.$ref));
  return ref ? el('a', { href: '#schema-' + refName(ref) }, t) : el('span', {}, t);
};

const table = (head, rows) => el('table', { class: 'grid' },
  el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))),
  el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))));

const example = (v) => (v === undefined ? '' : el('code', {}, JSON.stringify(v)));

const operation = (path, method, op, doc) => {
  const card = el('section', { class: 'card', id: 'op-' + (op.operationId || method + path) },
    el('h3', {}, el('span', { class: 'badge' }, method.toUpperCase()), ' ', el('code', {}, path), ' ',
      el('span', { class: 'muted' }, op.summary || '')));
  if (op.description) card.append(prose(op.description));
  const params = op.parameters || [];
  if (params.length) {
    card.append(el('h4', {}, 'Parameters'), table(['name', 'in', 'type', 'description', 'example'],
      params.map((p) => [el('code', {}, p.name + (p.required ? ' *' : '')), p.in, schemaLink(p.schema),
        prose(p.description, 'span'), example(p.example ?? (p.schema && p.schema.examples && p.schema.examples[0]))])));
  }
  if (op.requestBody) {
    const types = Object.entries(op.requestBody.content || {});
    card.append(el('h4', {}, 'Request body'), table(['content type', 'schema'],
      types.map(([ct, m]) => [el('code', {}, ct), schemaLink(m.schema)])));
    if (op.requestBody.description) card.append(prose(op.requestBody.description));
  }
  const responses = Object.entries(op.responses || {});
  if (responses.length) {
    card.append(el('h4', {}, 'Responses'), table(['status', 'description', 'body'],
      responses.map(([code, r]) => {
        const m = Object.entries(r.content || {})[0];
        return [el('code', {}, code), prose(r.description, 'span'), m ? el('span', {}, el('code', {}, m[0]), ' ', schemaLink(m[1].schema)) : ''];
      })));
  }
  return card;
};

const schema = (name, s) => {
  const card = el('section', { class: 'card', id: 'schema-' + name }, el('h3', {}, name));
  if (s.description) card.append(prose(s.description));
  const props = Object.entries(s.properties || {});
  const required = new Set(s.required || []);
  if (props.length) {
    card.append(table(['field', 'type', 'description', 'example'], props.map(([k, p]) => [
      el('code', {}, k + (required.has(k) ? ' *' : '')), schemaLink(p), prose(p.description, 'span'),
      example(p.examples ? p.examples[0] : p.example)])));
  } else {
    card.append(el('p', {}, schemaLink(s)));
  }
  if (s.examples && s.examples.length) card.append(el('h4', {}, 'Example'), el('pre', {}, JSON.stringify(s.examples[0], null, 2)));
  return card;
};

const render = (doc) => {
  const main = document.getElementById('docs');
  const info = doc.info || {};
  const nav = el('ul', { class: 'plain' });
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete', 'head', 'options']) {
      if (!item[method]) continue;
      const op = item[method];
      ops.push(operation(path, method, op, doc));
      nav.append(el('li', {}, el('a', { href: '#op-' + (op.operationId || method + path) }, `${method.toUpperCase()} ${path}`),
        ' ', el('span', { class: 'muted small' }, op.summary || '')));
    }
  }
  const schemes = Object.entries((doc.components && doc.components.securitySchemes) || {});
  const schemas = Object.entries((doc.components && doc.components.schemas) || {});
  main.replaceChildren(
    el('h1', {}, `${info.title || 'API'} `, el('span', { class: 'muted small' }, info.version || '')),
    prose(info.description),
    schemes.length ? el('section', { class: 'card' }, el('h2', {}, 'Authentication'),
      table(['scheme', 'how'], schemes.map(([k, s]) => [el('code', {}, k), prose(s.description || `${s.type} ${s.scheme || s.name || ''}`, 'span')]))) : '',
    el('section', { class: 'card' }, el('h2', {}, 'Operations'), nav),
    ...ops,
    el('h2', {}, 'Schemas'),
    ...schemas.map(([k, s]) => schema(k, s)),
  );
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
};

fetch('/openapi.json').then((r) => {
  if (!r.ok) throw new Error(`GET /openapi.json: ${r.status}`);
  return r.json();
}).then(render).catch((err) => {
  document.getElementById('docs').replaceChildren(el('p', { class: 'error' }, `Could not load the API description: ${err.message}`));
});
