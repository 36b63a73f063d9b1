// chronicle's web page: trips, a timeline, entities and the sales ledger, drawn from the
// JSON API of the server that serves this file, as of any position of the log, and
// redrawn live from the server's event feed (/events/live).
//
// Plain JavaScript with no build step. Every text from the API goes into the page as
// text (never as HTML), except the timeline's tooltips, which vis-timeline takes as
// HTML: those are escaped with `esc`.
(function () {
  'use strict';

  // ---- state -------------------------------------------------------------------------

  const state = {
    head: 0, // the log's last position, as far as the page knows
    asOf: null, // null: follow the head; a number: the position shown
    names: {}, // entity id → display name, from every answer's `names`
    seq: 0, // render generation: an answer for an older render is dropped
    routeKey: null, // the route last drawn, to tell a redraw from a navigation
    timeline: null, // the vis Timeline while the timeline view is shown
    tlWindow: null, // {key, start, end}: the timeline's zoom, kept across redraws
    showRetracted: false,
    selected: null, // {key, id}: the fact selected on a timeline
    categories: new Set(['trip', 'arms-sale']), // stream categories seen on timelines
  };

  /** The most timeline entries a view draws; past it, the page asks for a narrower one. */
  const MAX_ENTRIES = 5000;
  /** How many timeline entries the page asks for at a time: the server's most. */
  const PAGE = 10000;

  const $ = (selector, root) => (root || document).querySelector(selector);

  /** An element with attributes (`on…` are listeners) and children (text or nodes). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    })[c]);
  }

  // ---- the API -----------------------------------------------------------------------

  /** GET a JSON answer; throws with the server's own message on failure. */
  async function api(path, params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== null && value !== undefined && value !== '') query.set(key, value);
    }
    const url = path + (query.toString() ? '?' + query : '');
    const response = await fetch(url, { headers: { Accept: 'application/json' } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(body.error || `${response.status} ${response.statusText}`);
    }
    if (body.names) Object.assign(state.names, body.names);
    return body;
  }

  /** Where a view query stands: as of the chosen position, or at least the known head. */
  function at() {
    return state.asOf === null ? { min_position: state.head } : { as_of: state.asOf };
  }

  /** Timeline entries matching `params`, page after page (`next`): at most `max`, with
   *  `more` when the timeline has others. When there is more than one page, every page,
   *  the first read again, is asked as of the position the first reflected (answered
   *  from the views' history), so that they make one answer while the log grows. */
  async function timelineEntries(params, max) {
    const entries = [];
    let query = Object.assign({}, params, at());
    let pinned = state.asOf !== null;
    for (;;) {
      const page = await api('/timeline', Object.assign({ limit: Math.min(PAGE, max + 1 - entries.length) }, query));
      if (!pinned && page.next) {
        pinned = true;
        query = Object.assign({}, params, { as_of: page.as_of });
        continue;
      }
      entries.push(...page.entries);
      if (!page.next || entries.length > max) break;
      query = Object.assign({}, query, { after: page.next });
    }
    return { entries: entries.slice(0, max), more: entries.length > max };
  }

  const name = (id) => (id ? state.names[id] || id : '');

  // ---- routes: #/trips, #/trip/ID, #/timeline[/entity|category|stream/VALUE],
  //      #/entities, #/entity/ID, #/sales --------------------------------------------

  const part = (p) => encodeURIComponent(p).replace(/%3A/gi, ':');
  const link = (...parts) => '#/' + parts.map(part).join('/');

  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean)
      .map((p) => { try { return decodeURIComponent(p); } catch (e) { return p; } });
    // A list's name with an id (`#/trips/ID`, `#/entities/ID`) is that one's page.
    const one = { trips: 'trip', entities: 'entity' }[parts[0]];
    const view = (parts.length > 1 && one) || parts[0] || 'trips';
    return { view, args: parts.slice(1), key: parts.join('/') || 'trips' };
  }

  /** A link to the page that best shows a stream: its trip, entity or timeline. */
  function streamLink(stream) {
    if (stream.startsWith('trip:')) return link('trip', stream);
    if (/^(person|org|office|place|country):/.test(stream)) return link('entity', stream);
    return link('timeline', 'stream', stream);
  }

  // ---- dates and amounts -------------------------------------------------------------

  /** The first instant of a point's precision, or (`end`) the first one after it. */
  function parsePoint(text, end) {
    const add = end ? 1 : 0;
    let m = /^(\d{4})$/.exec(text);
    if (m) return new Date(Date.UTC(+m[1] + add, 0, 1));
    m = /^(\d{4})-(\d{2})$/.exec(text);
    if (m) return new Date(Date.UTC(+m[1], +m[2] - 1 + add, 1));
    m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
    if (m) return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3] + add));
    const d = new Date(text);
    return isNaN(d) ? null : d;
  }

  /** An extent (`2025-01-05`, `2025-01`, `A/B`, trailing `~`) as its earliest and latest. */
  function parseExtent(text) {
    const approx = text.endsWith('~');
    const body = approx ? text.slice(0, -1) : text;
    const interval = body.includes('/');
    const [a, b] = interval ? body.split('/') : [body, body];
    return {
      approx,
      interval,
      start: parsePoint(a, false),
      end: parsePoint(b, true),
      instant: !interval && body.includes('T'),
      day: !interval && /^\d{4}-\d{2}-\d{2}$/.test(body),
    };
  }

  /** An extent as people read it: "2025-01-06 – 2025-01-11, approx.". */
  function when(text) {
    if (!text) return 'undated';
    const approx = text.endsWith('~');
    const body = (approx ? text.slice(0, -1) : text)
      .split('/').map((p) => p.replace('T', ' ').replace(/:00Z$/, ' UTC').replace(/Z$/, ' UTC'))
      .join(' – ');
    return approx ? body + ', approx.' : body;
  }

  /** "$3.64 billion", "12.5 million EUR": in words when that is the exact amount to two
   *  decimals, else in full with its thousands separated and the fewest decimals that
   *  hold it ("$11,437,250,000", "$999.999", "1,250,000,000.5 CNY"), so a figure is never
   *  rounded; "about …" when `approximate`. Written as the command line writes amounts
   *  (`format_money` in src/query.rs), step by step on the same doubles. */
  function money(value, approximate) {
    const amount = value.amount;
    const [unit, word] = amount >= 1e15 ? [1e15, ' quadrillion'] : amount >= 1e12 ? [1e12, ' trillion']
      : amount >= 1e9 ? [1e9, ' billion'] : amount >= 1e6 ? [1e6, ' million'] : [1, ''];
    let number;
    if (unit > 1 && exactTo(amount, unit, 2, EXACT)) {
      number = fixed(amount / unit, 2).replace(/0+$/, '').replace(/\.+$/, '') + word;
    } else {
      // The fewest decimals that hold it; a total summed from cents is held to the cent
      // even when the sum's last bits are off.
      let decimals = [0, 1, 2, 3, 4, 5, 6].find((d) => exactTo(amount, 1, d, EXACT));
      if (decimals === undefined) decimals = [0, 1, 2, 3, 4, 5, 6].find((d) => exactTo(amount, 1, d, SUMMED));
      if (decimals === undefined) decimals = 6;
      number = inFull(amount, decimals);
    }
    const text = value.currency === 'USD' ? `$${number}` : `${number} ${value.currency}`;
    return (approximate ? 'about ' : '') + text;
  }

  /** The relative error of a double that holds the figure as given ... */
  const EXACT = 4e-16;
  /** ... and of a sum of many of them. */
  const SUMMED = 1e-12;

  /** Rounds half away from zero, as Rust's `f64::round`. */
  const roundAway = (x) => (x < 0 ? -Math.round(-x) : Math.round(x));

  /** Whether `x` is a whole number of `unit`s to `decimals` decimals (3,640,000,000 is
   *  3.64 billions), within the relative `error`. */
  function exactTo(x, unit, decimals, error) {
    const scale = 10 ** decimals;
    return Math.abs(roundAway(x / unit * scale) * unit / scale - x) <= Math.abs(x) * error;
  }

  /** `x` with `decimals` decimals, as Rust's `format!("{x:.decimals$}")`: from the
   *  double's exact value, ties to even, never in exponent form (`toFixed` rounds ties
   *  up and turns to exponents from 10^21). */
  function fixed(x, decimals) {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, x);
    const negative = view.getUint32(0) >>> 31 === 1;
    const biased = (view.getUint32(0) >>> 20) & 0x7ff;
    const fraction = (BigInt(view.getUint32(0) & 0xfffff) << 32n) | BigInt(view.getUint32(4));
    // x = ±mantissa × 2^exponent, exactly.
    const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
    const exponent = BigInt((biased === 0 ? 1 : biased) - 1075);
    const scaled = mantissa * 10n ** BigInt(decimals);
    let n;
    if (exponent >= 0n) {
      n = scaled << exponent;
    } else {
      const denominator = 1n << -exponent;
      n = scaled / denominator;
      const twice = (scaled % denominator) * 2n;
      if (twice > denominator || (twice === denominator && n % 2n === 1n)) n += 1n;
    }
    const digits = n.toString().padStart(decimals + 1, '0');
    const whole = digits.slice(0, digits.length - decimals);
    return (negative ? '-' : '') + whole + (decimals ? '.' + digits.slice(digits.length - decimals) : '');
  }

  /** `x` with `decimals` decimals and its thousands separated: 11,437,250,000. */
  function inFull(x, decimals) {
    const text = fixed(x, decimals);
    const point = text.indexOf('.');
    const whole = point < 0 ? text : text.slice(0, point);
    let out = '';
    for (let i = 0; i < whole.length; i += 1) {
      if (i > 0 && (whole.length - i) % 3 === 0) out += ',';
      out += whole[i];
    }
    return out + text.slice(whole.length);
  }

  // ---- shared pieces -----------------------------------------------------------------

  const badge = (text, kind, title) => h('span', { class: `badge badge-${kind}`, title }, text);

  function correctedBadge(reasons) {
    const why = (reasons || []).join('; ');
    return badge('✎ corrected', 'corrected', why ? `Corrected: ${why}` : 'Corrected');
  }

  /** Whether `url` is a web address (http: or https:), the only kind drawn as a link:
   *  a `javascript:` or other URL from a source is shown as text, never followed. */
  function webUrl(url) {
    try {
      return ['http:', 'https:'].includes(new URL(url).protocol);
    } catch (e) {
      return false;
    }
  }

  function sourceBlock(source) {
    if (!source) return null;
    const title = source.title || source.url || 'source';
    return h('div', { class: 'source' },
      h('p', { class: 'source-line' },
        source.url && webUrl(source.url)
          ? h('a', { href: source.url, rel: 'noopener noreferrer', target: '_blank' }, title)
          : h('cite', {}, title),
        source.publisher ? ` — ${source.publisher}` : '',
        source.published ? `, ${when(source.published)}` : ''),
      source.quote ? h('blockquote', {}, `“${source.quote}”`) : null);
  }

  /** Links to entities: "A, B, C", or (`inWords`) "A, B and C". */
  function entityLinks(ids, inWords) {
    const between = (i) => (!i ? '' : inWords && i === ids.length - 1 ? ' and ' : ', ');
    return ids.map((id, i) => [between(i), h('a', { href: link('entity', id) }, name(id))]);
  }

  /** A list of timeline entries: date, summary, marks, stream, and the source. */
  function entryList(entries, options) {
    const opts = options || {};
    if (!entries.length) return h('p', { class: 'empty' }, 'No facts here as of this position.');
    return h('ol', { class: 'entries' }, entries.map((e) => {
      const summary = opts.onSelect
        ? h('button', {
          type: 'button', class: 'linkish', 'data-key': `entry:${e.id}`,
          onclick: () => opts.onSelect(e.id),
        }, e.summary)
        : h('span', {}, e.summary);
      return h('li', { class: e.retracted ? 'entry retracted' : 'entry', 'data-id': e.id },
        h('span', { class: 'when' }, when(e.occurred)),
        h('span', { class: 'what' },
          summary, ' ',
          e.corrected ? correctedBadge(e.corrections) : null,
          e.retracted ? badge('retracted', 'retracted', `Retracted: ${e.retracted}`) : null,
          e.corrected && e.corrections ? h('span', { class: 'reason' }, ` Corrected: ${e.corrections.join('; ')}.`) : null,
          e.retracted ? h('span', { class: 'reason' }, ` Retracted: ${e.retracted}.`) : null,
          opts.sources && e.source ? sourceBlock(e.source) : null,
          opts.sources ? (e.evidence || []).map(sourceBlock) : null));
    }));
  }

  // ---- views -------------------------------------------------------------------------

  const STATUS = { announced: 'info', underway: 'ok', completed: 'done', postponed: 'warn', cancelled: 'bad' };

  function stopLabel(stop) {
    const place = name(stop.place);
    return stop.city ? stop.city : place;
  }

  /** "Seoul → Tokyo → Paris", each stop marked with its status. */
  function itinerary(stops) {
    return h('p', { class: 'route', 'aria-label': 'Itinerary' }, stops.map((s, i) => [
      i ? h('span', { class: 'arrow' }, ' → ') : null,
      h('span', { class: `stop stop-${s.status}`, title: `${name(s.place)}: ${s.status}` },
        stopLabel(s), s.status === 'visited' ? ' ✓' : '', s.status === 'cancelled' ? ' (cancelled)' : ''),
    ]));
  }

  /** When a trip starts, as `chronicle trip list` and `trip show` say it: when it
   *  started once a trip.started says so (and when it was to, when that differs). */
  function startLine(t) {
    if (!t.started) return t.starts ? ` · starts ${when(t.starts)}` : '';
    const planned = t.starts && t.starts !== t.started ? ` (was to start ${when(t.starts)})` : '';
    return ` · started ${when(t.started)}${planned}`;
  }

  async function tripsView() {
    const { trips } = await api('/trips', at());
    return h('section', {},
      h('h1', {}, 'Trips'),
      trips.length ? h('ul', { class: 'cards' }, trips.map((t) => h('li', { class: 'card' },
        h('h2', {}, h('a', { href: link('trip', t.stream), 'data-key': `trip:${t.stream}` }, t.title || t.stream)),
        h('p', { class: 'meta' },
          name(t.traveler), t.role ? `, ${name(t.role)}` : '', ' · ',
          badge(t.status, STATUS[t.status] || 'info'),
          startLine(t),
          ` · ${t.sources} source${t.sources === 1 ? '' : 's'}`,
          t.corrected ? [' ', correctedBadge()] : null),
        itinerary(t.stops))))
        : h('p', { class: 'empty' }, 'No trips as of this position.'));
  }

  async function tripView(args) {
    const stream = args[0];
    const [{ trip: t }, { entries }] = await Promise.all([
      api(`/trips/${encodeURIComponent(stream)}`, at()),
      timelineEntries({ stream }, Infinity),
    ]);
    const stops = t.stops.map((s, i) => h('li', { class: `stop-card stop-${s.status}` },
      h('h3', {}, `${i + 1}. ${stopLabel(s)}`, s.city ? h('span', { class: 'muted' }, `, ${name(s.place)}`) : null,
        ' ', badge(s.status, s.status === 'visited' ? 'ok' : s.status === 'cancelled' ? 'bad' : 'info')),
      s.dates ? h('p', {}, `Dates: ${when(s.dates)}`) : null,
      s.arrived || s.departed ? h('p', {},
        s.arrived ? `Arrived ${when(s.arrived)}` : '', s.arrived && s.departed ? ' · ' : '',
        s.departed ? `Left ${when(s.departed)}` : '') : null,
      s.cancel_reason ? h('p', {}, `Cancelled: ${s.cancel_reason}`) : null,
      s.agenda.length ? [h('h4', {}, 'Agenda'), h('ul', { class: 'agenda' }, s.agenda.map((a) =>
        h('li', {}, h('strong', {}, a.topic), a.detail ? ` — ${a.detail}` : '')))] : null,
      s.planned_meetings && s.planned_meetings.length ? [h('h4', {}, 'Meetings planned'),
        h('ul', { class: 'planned-meetings' }, s.planned_meetings.map((m) => h('li', {},
          'To meet ', entityLinks(m.with, true), m.topic ? ` on ${m.topic}` : '',
          m.occurred ? `, ${when(m.occurred)}` : '')))] : null,
      s.meetings.length ? [h('h4', {}, 'Meetings held'), h('ul', {}, s.meetings.map((m) => h('li', {},
        'With ', entityLinks(m.with), m.topic ? ` — ${m.topic}` : '',
        m.occurred ? ` (${when(m.occurred)})` : '')))] : null));
    const back = t.planned_return;
    return h('section', {},
      h('p', { class: 'crumbs' }, h('a', { href: '#/trips' }, 'Trips'), ' / '),
      h('h1', {}, t.title || t.stream),
      h('p', { class: 'meta' },
        h('a', { href: link('entity', t.traveler) }, name(t.traveler)),
        t.role ? `, ${name(t.role)}` : '', ' · ', badge(t.status, STATUS[t.status] || 'info'),
        startLine(t),
        ` · version ${t.version}, last position ${t.last_position}`,
        t.corrected ? [' ', correctedBadge()] : null),
      t.purpose ? h('p', { class: 'purpose' }, t.purpose) : null,
      itinerary(t.stops),
      h('p', {}, h('a', { href: link('timeline', 'stream', t.stream) }, 'See this trip on the timeline')),
      h('h2', {}, 'Itinerary'),
      h('ol', { class: 'stops' }, stops),
      h('h2', {}, 'Planned return'),
      back ? h('p', {}, 'To ', h('a', { href: link('entity', back.to) }, name(back.to)),
        back.occurred ? `, ${when(back.occurred)}` : '', back.reason ? ` — ${back.reason}` : '',
        back.related ? [' (', h('a', { href: streamLink(back.related) }, back.related), ')'] : null)
        : h('p', { class: 'empty' }, 'None reported.'),
      h('h2', {}, 'Statements'),
      t.statements.length ? h('ul', { class: 'statements' }, t.statements.map((s) => h('li', {},
        h('a', { href: link('entity', s.speaker) }, name(s.speaker)), ` (${s.stance}, ${when(s.occurred)}): `,
        s.summary, s.corrected ? [' ', correctedBadge()] : null,
        s.quote ? h('blockquote', {}, `“${s.quote}”`) : null)))
        : h('p', { class: 'empty' }, 'None reported.'),
      h('h2', {}, `Facts (${entries.length}) and sources (${t.sources})`),
      entryList(entries, { sources: true }));
  }

  function categoryOf(entry) {
    return entry.stream.split(':')[0];
  }

  /** A timeline entry as a vis-timeline item: a box for a day or an instant, a range
   *  for anything coarser, wider or approximate (never narrower than its extent). */
  function toItem(e) {
    const x = parseExtent(e.occurred);
    const range = x.interval || x.approx || !(x.day || x.instant);
    const classes = [`cat-${e.type.split('.')[0].replace(/_/g, '-')}`];
    if (range) classes.push('uncertain');
    if (x.approx) classes.push('approx');
    if (e.corrected) classes.push('corrected');
    if (e.retracted) classes.push('retracted');
    const tip = [`<strong>${esc(when(e.occurred))}</strong>`, esc(e.summary)];
    if (e.corrected) tip.push(`Corrected: ${esc((e.corrections || []).join('; ') || 'no reason given')}`);
    if (e.retracted) tip.push(`Retracted: ${esc(e.retracted)}`);
    const item = {
      id: e.id,
      group: categoryOf(e),
      content: esc((x.approx ? '≈ ' : '') + (e.corrected ? '✎ ' : '') + e.summary),
      title: tip.join('<br>'),
      className: classes.join(' '),
      start: x.instant ? x.start : range ? x.start : new Date(x.start.getTime() + 12 * 3600e3),
      type: range ? 'range' : 'box',
    };
    if (range) item.end = x.end;
    return item;
  }

  /** The first view of a timeline: the span of its dated-to-the-month facts. */
  function focusWindow(entries) {
    const narrow = entries.map((e) => parseExtent(e.occurred))
      .filter((x) => x.start && x.end && x.end - x.start <= 40 * 86400e3);
    if (!narrow.length) return null;
    const start = Math.min(...narrow.map((x) => x.start.getTime()));
    const end = Math.max(...narrow.map((x) => x.end.getTime()));
    const pad = Math.max((end - start) * 0.08, 86400e3);
    return { start: start - pad, end: end + pad };
  }

  async function timelineOptions() {
    const [{ entities }, { trips }] = await Promise.all([api('/entities', at()), api('/trips', at())]);
    return { entities, trips };
  }

  async function timelineView(args) {
    const [kind, value] = args;
    const filter = {};
    if (['entity', 'category', 'stream'].includes(kind) && value) filter[kind] = value;
    // Retracted facts, when shown, come from the server too: in timeline order, with
    // their reason, on the timelines of every entity they involved.
    const shown = state.showRetracted ? { include_retracted: true } : {};
    const [{ entries: all, more: truncated }, choices] = await Promise.all([
      timelineEntries(Object.assign({}, filter, shown), MAX_ENTRIES),
      timelineOptions(),
    ]);
    const byId = new Map(all.map((e) => [e.id, e]));
    const categories = [...new Set(all.map(categoryOf))].sort();
    categories.forEach((c) => state.categories.add(c));
    const routeKey = parseRoute().key;

    // The filter: all facts, one entity, one category, one trip; or the one stream
    // shown, when it is not a trip (a sale, a conflict: reached from a fact's link).
    const trips = choices.trips.map((t) => [t.stream, t.title || t.stream]);
    const otherStream = filter.stream && !trips.some(([v]) => v === filter.stream) ? filter.stream : null;
    const kindSelect = h('select', { id: 'tl-kind', 'aria-label': 'Show' },
      [['all', 'All facts'], ['entity', 'One entity'], ['category', 'One category'],
        ['stream', otherStream ? 'One stream' : 'One trip']]
        .map(([v, label]) => h('option', { value: v, selected: (kind || 'all') === v }, label)));
    const valueOptions = {
      entity: choices.entities.map((e) => [e.id, `${e.name} (${e.id})`]),
      category: [...state.categories].sort().map((c) => [c, c]),
      stream: otherStream ? [[otherStream, otherStream], ...trips] : trips,
    };
    const valueSelect = h('select', { id: 'tl-value', 'aria-label': 'Which', hidden: !(kind in valueOptions) },
      (valueOptions[kind] || []).map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
    const go = () => {
      const k = kindSelect.value;
      if (k === 'all') location.hash = link('timeline');
      else {
        const first = (valueOptions[k] || [])[0];
        const v = k === kind && valueSelect.value ? valueSelect.value : first && first[0];
        location.hash = v ? link('timeline', k, v) : link('timeline');
      }
    };
    kindSelect.addEventListener('change', go);
    valueSelect.addEventListener('change', go);
    const retractedBox = h('input', {
      type: 'checkbox', id: 'tl-retracted', checked: state.showRetracted,
      onchange: (ev) => { state.showRetracted = ev.target.checked; schedule(0); },
    });

    const chart = h('div', {
      id: 'tl-chart', class: 'chart', tabindex: '0', role: 'group',
      'aria-label': 'Timeline chart. Plus and minus zoom, arrow keys move, 0 fits; the list below holds the same facts.',
    });
    const details = h('section', { id: 'tl-details', class: 'details', 'aria-live': 'polite' },
      h('p', { class: 'muted' }, 'Select a fact on the chart or in the list to see its sources and corrections.'));
    const heading = filter.entity ? `Timeline of ${name(filter.entity)}`
      : filter.stream ? `Timeline of ${filter.stream}`
        : filter.category ? `Timeline of ${filter.category}` : 'Timeline of all facts';

    function show(id) {
      const e = byId.get(id);
      if (!e) return;
      details.replaceChildren(...[
        h('h2', {}, e.summary),
        h('p', { class: 'meta' }, when(e.occurred), e.occurred_text ? ` (“${e.occurred_text}”)` : '',
          ` · ${e.type} · `, h('a', { href: streamLink(e.stream) }, e.stream), ` · position ${e.position}`),
        e.corrected ? h('p', { class: 'reason' }, correctedBadge(e.corrections), ' ',
          (e.corrections || []).join('; ')) : null,
        e.retracted ? h('p', { class: 'reason' }, badge('retracted', 'retracted'), ` ${e.retracted}`) : null,
        e.entities && e.entities.length ? h('p', {}, 'Involves ', entityLinks(e.entities)) : null,
        sourceBlock(e.source),
        ...(e.evidence || []).map(sourceBlock),
      ].filter(Boolean));
    }
    function select(id) {
      state.selected = { key: routeKey, id };
      if (state.timeline) state.timeline.setSelection([id], { focus: true });
      show(id);
    }

    const tl = () => state.timeline;
    const moveBy = (fraction) => {
      const w = tl().getWindow();
      const span = w.end - w.start;
      tl().setWindow(w.start.valueOf() + span * fraction, w.end.valueOf() + span * fraction);
    };
    const controls = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Timeline zoom and pan' },
      h('button', { type: 'button', onclick: () => tl().zoomIn(0.5) }, 'Zoom in'),
      h('button', { type: 'button', onclick: () => tl().zoomOut(0.5) }, 'Zoom out'),
      h('button', { type: 'button', onclick: () => moveBy(-0.3), 'aria-label': 'Earlier' }, '← Earlier'),
      h('button', { type: 'button', onclick: () => moveBy(0.3), 'aria-label': 'Later' }, 'Later →'),
      h('button', { type: 'button', onclick: () => tl().fit() }, 'Fit all'));
    chart.addEventListener('keydown', (ev) => {
      const keys = {
        '+': () => tl().zoomIn(0.5), '=': () => tl().zoomIn(0.5), '-': () => tl().zoomOut(0.5),
        ArrowLeft: () => moveBy(-0.2), ArrowRight: () => moveBy(0.2), 0: () => tl().fit(),
      };
      if (keys[ev.key] && tl()) { ev.preventDefault(); keys[ev.key](); }
    });

    const node = h('section', { class: 'timeline-view' },
      h('h1', {}, heading),
      h('div', { class: 'filters' },
        h('label', { for: 'tl-kind' }, 'Show '), kindSelect, ' ', valueSelect, ' ',
        h('label', { class: 'check' }, retractedBox, ' show retracted facts, struck through')),
      truncated ? h('p', { class: 'error', role: 'status' },
        `Only the earliest ${MAX_ENTRIES} facts are drawn; choose an entity, category or trip to see the rest.`) : null,
      controls,
      chart,
      h('p', { class: 'legend' },
        h('span', { class: 'key key-box' }, 'a day'), ' ',
        h('span', { class: 'key key-range' }, 'a range: coarse, uncertain or approximate (≈)'), ' ',
        h('span', { class: 'key key-corrected' }, '✎ corrected'), ' ',
        h('span', { class: 'key key-retracted' }, 'retracted')),
      details,
      h('h2', {}, `Facts (${all.length})`),
      entryList(all.slice().sort((a, b) => parseExtent(a.occurred).start - parseExtent(b.occurred).start
        || a.position - b.position), { onSelect: select }));

    const mounted = () => {
      if (typeof vis === 'undefined') {
        chart.replaceChildren(h('p', { class: 'error' }, 'The timeline library did not load.'));
        return;
      }
      const items = new vis.DataSet(all.map(toItem));
      const groups = new vis.DataSet(categories.map((c) => ({ id: c, content: esc(c) })));
      // The library fits every item on its first draw (the demo's facts reported
      // "before 2025-01-04" span a year); then the page narrows to the kept window or
      // to the dated facts. (Passing `start`/`end` as options instead can leave the
      // chart hidden: vis-timeline waits for a range change that never comes.)
      const saved = state.tlWindow && state.tlWindow.key === routeKey ? state.tlWindow : focusWindow(all);
      const timeline = new vis.Timeline(chart, items, groups, {
        onInitialDrawComplete: () => {
          if (saved && state.timeline === timeline) {
            timeline.setWindow(saved.start, saved.end, { animation: false });
          }
        },
        stack: true, orientation: 'top', zoomMin: 3600e3, zoomMax: 20 * 365 * 86400e3,
        margin: { item: { horizontal: 4, vertical: 6 } }, maxHeight: 560, verticalScroll: true,
        tooltip: { followMouse: true, overflowMethod: 'flip' }, showCurrentTime: false,
        groupOrder: 'id',
      });
      state.timeline = timeline;
      timeline.on('rangechanged', (p) => {
        state.tlWindow = { key: routeKey, start: p.start.valueOf(), end: p.end.valueOf() };
      });
      timeline.on('select', (p) => {
        if (!p.items.length) return;
        state.selected = { key: routeKey, id: p.items[0] };
        show(p.items[0]);
      });
      // A redraw (live, or as of another position) keeps the fact selected, if it is
      // still there.
      const kept = state.selected && state.selected.key === routeKey && byId.has(state.selected.id)
        ? state.selected.id : null;
      if (kept) {
        timeline.setSelection([kept]);
        show(kept);
      }
    };
    return { node, mounted };
  }

  async function entitiesView() {
    const { entities } = await api('/entities', at());
    const rows = entities.map((e) => h('tr', { 'data-text': `${e.name} ${e.id} ${e.aliases.join(' ')}`.toLowerCase() },
      h('th', { scope: 'row' }, h('a', { href: link('entity', e.id), 'data-key': `entity:${e.id}` }, e.name)),
      h('td', {}, e.kind),
      h('td', {}, h('code', {}, e.id)),
      h('td', {}, e.aliases.join(', ')),
      h('td', { class: 'num' }, e.events),
      h('td', {}, e.first ? when(e.first) : ''),
      h('td', {}, e.last ? when(e.last) : '')));
    const search = h('input', {
      type: 'search', id: 'entity-filter', placeholder: 'name, alias or id',
      oninput: () => {
        const q = search.value.trim().toLowerCase();
        for (const row of rows) row.hidden = q !== '' && !row.dataset.text.includes(q);
      },
    });
    return h('section', {},
      h('h1', {}, 'Entities'),
      h('p', {}, h('label', { for: 'entity-filter' }, 'Filter '), search),
      h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Id', 'Aliases', 'Facts', 'First', 'Last']
          .map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows))));
  }

  async function entityView(args) {
    const id = args[0];
    const [{ entity: e }, { entries, more }] = await Promise.all([
      api(`/entities/${encodeURIComponent(id)}`, at()),
      timelineEntries({ entity: id }, MAX_ENTRIES),
    ]);
    const wikidata = e.wikidata && /^Q\d+$/.test(e.wikidata)
      ? h('a', { href: `https://www.wikidata.org/wiki/${e.wikidata}`, rel: 'noopener noreferrer', target: '_blank' }, e.wikidata)
      : e.wikidata;
    return h('section', {},
      h('p', { class: 'crumbs' }, h('a', { href: '#/entities' }, 'Entities'), ' / '),
      h('h1', {}, e.name),
      e.description ? h('p', { class: 'purpose' }, e.description) : null,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Id'), h('dd', {}, h('code', {}, e.id)),
        h('dt', {}, 'Kind'), h('dd', {}, e.kind),
        h('dt', {}, 'Also known as'), h('dd', {}, e.aliases.length ? e.aliases.join(', ') : '—'),
        e.country ? [h('dt', {}, 'Country'), h('dd', {}, h('a', { href: link('entity', e.country) }, name(e.country)))] : null,
        wikidata ? [h('dt', {}, 'Wikidata'), h('dd', {}, wikidata)] : null,
        h('dt', {}, 'Facts'), h('dd', {}, `${e.events}`, e.first ? `, from ${when(e.first)} to ${when(e.last)}` : '')),
      e.status.length ? [h('h2', {}, 'Status'), h('ul', {}, e.status.map((s) =>
        h('li', {}, s.summary, s.occurred ? ` (${when(s.occurred)})` : '')))] : null,
      h('h2', {}, 'What and when'),
      h('p', {}, h('a', { href: link('timeline', 'entity', e.id) }, `See ${e.name} on the timeline`)),
      entryList(entries, { sources: true }),
      more ? h('p', { class: 'error', role: 'status' }, `Only the earliest ${MAX_ENTRIES} of these facts are listed.`) : null);
  }

  async function salesView() {
    const [report, { entries }] = await Promise.all([
      api('/sales', at()),
      timelineEntries({ category: 'arms-sale' }, Infinity),
    ]);
    const reasons = new Map(entries.map((e) => [e.id, e.corrections]));
    const totals = (title, rows, party) => [
      h('h2', {}, title),
      rows.length ? h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, [party, 'Currency', 'Total', 'Sales'].map((c, i) =>
          h('th', { scope: 'col', class: i > 1 ? 'num' : null }, c)))),
        h('tbody', {}, rows.map((t) => h('tr', {},
          h('th', { scope: 'row' }, h('a', { href: link('entity', t.party) }, name(t.party))),
          h('td', {}, t.currency),
          h('td', { class: 'num' }, money({ amount: t.amount, currency: t.currency }, t.approximate)),
          h('td', { class: 'num' }, t.sales))))))
        : h('p', { class: 'empty' }, 'None.'),
    ];
    return h('section', {},
      h('h1', {}, 'Arms sales'),
      report.sales.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'sales' },
        h('thead', {}, h('tr', {}, ['When', 'Seller → buyer', 'Value', 'Items', 'Statements']
          .map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, report.sales.map((s) => h('tr', { 'data-id': s.id },
          h('td', {}, when(s.occurred)),
          h('th', { scope: 'row' }, h('a', { href: link('entity', s.seller) }, name(s.seller)), ' → ',
            h('a', { href: link('entity', s.buyer) }, name(s.buyer)),
            h('div', {}, h('a', { href: link('timeline', 'stream', s.stream), class: 'small' }, s.stream))),
          h('td', { class: 'num value' }, h('span', { class: 'amount' }, money(s.value, s.approximate)),
            s.corrected ? h('div', {}, correctedBadge(reasons.get(s.id)),
              h('span', { class: 'reason' }, ` ${(reasons.get(s.id) || []).join('; ')}`)) : null),
          h('td', {}, s.items.join(', ')),
          h('td', {}, s.statements.length ? h('ul', { class: 'statements' }, s.statements.map((st) => h('li', {},
            h('a', { href: link('entity', st.speaker) }, name(st.speaker)), ` ${st.stance}: `, st.summary))) : '—'))))))
        : h('p', { class: 'empty' }, 'No sales as of this position.'),
      totals('Totals by buyer', report.by_buyer, 'Buyer'),
      totals('Totals by seller', report.by_seller, 'Seller'));
  }

  const VIEWS = {
    trips: tripsView, trip: tripView, timeline: timelineView,
    entities: entitiesView, entity: entityView, sales: salesView,
  };

  // ---- drawing -----------------------------------------------------------------------

  let timer = null;
  let drawing = false;
  let again = false;
  /** Redraws the current view after `delay` ms. A later call replaces an earlier one,
   *  unless `keep` (live updates: a steady stream of events must not postpone the
   *  redraw forever). One draw at a time; a request during a draw runs after it. */
  function schedule(delay, keep) {
    if (keep && timer) return;
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; draw(); }, delay);
  }

  async function draw() {
    if (drawing) { again = true; return; }
    drawing = true;
    try {
      await render();
    } finally {
      drawing = false;
      if (again) { again = false; schedule(0); }
    }
  }

  async function render() {
    const seq = ++state.seq;
    const route = parseRoute();
    const navigated = route.key !== state.routeKey;
    const main = $('#view');
    document.documentElement.dataset.state = 'loading';
    for (const a of document.querySelectorAll('[data-nav]')) {
      const current = a.dataset.nav === route.view || (a.dataset.nav === 'trips' && route.view === 'trip')
        || (a.dataset.nav === 'entities' && route.view === 'entity');
      if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const view = VIEWS[route.view];
    let result;
    try {
      if (!view) throw new Error(`there is no page “${route.key}”; use the links above`);
      result = await view(route.args);
    } catch (error) {
      result = h('section', {}, h('h1', {}, 'Cannot show this'),
        h('p', { class: 'error', role: 'alert' }, String(error.message || error)));
    }
    if (seq !== state.seq) return; // a newer render is under way
    const { node, mounted } = result instanceof Node ? { node: result } : result;
    const focused = document.activeElement && main.contains(document.activeElement)
      ? document.activeElement.id || document.activeElement.dataset.key : null;
    if (state.timeline) { state.timeline.destroy(); state.timeline = null; }
    main.replaceChildren(node);
    if (mounted) mounted();
    state.routeKey = route.key;
    document.title = `${($('h1', main) || {}).textContent || 'chronicle'} · chronicle`;
    if (navigated) {
      window.scrollTo(0, 0);
      main.focus({ preventScroll: true });
    } else if (focused) {
      const again = document.getElementById(focused)
        || main.querySelector(`[data-key="${CSS.escape(focused)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
    document.documentElement.dataset.asOf = state.asOf === null ? state.head : state.asOf;
    document.documentElement.dataset.state = 'ready';
  }

  // ---- the as-of control and the live feed -------------------------------------------

  const slider = () => $('#asof');
  let describeTimer = null;

  function showPosition() {
    const position = state.asOf === null ? state.head : state.asOf;
    slider().max = String(state.head);
    slider().value = String(position);
    slider().setAttribute('aria-valuetext', state.asOf === null
      ? `position ${position}, the head of the log (live)` : `position ${position} of ${state.head}`);
    $('#asof-value').textContent = state.asOf === null ? `${position} (live)` : `${position} of ${state.head}`;
    $('#asof-live').setAttribute('aria-pressed', String(state.asOf === null));
    document.body.classList.toggle('past', state.asOf !== null);
    clearTimeout(describeTimer);
    describeTimer = setTimeout(() => describe(position), 120);
  }

  /** Says what the chosen position is: the event there and when it was recorded. */
  async function describe(position) {
    const what = $('#asof-what');
    if (position === 0) { what.textContent = 'Before the first event: every view is empty.'; return; }
    try {
      const { events } = await api('/events', { from: position, limit: 1 });
      const e = events[0];
      if (!e || (state.asOf === null ? state.head : state.asOf) !== position) return;
      what.textContent = `${state.asOf === null ? 'Showing the latest' : 'Showing the log as it stood at'}`
        + ` #${e.position}: ${e.type} in ${e.stream}, recorded ${e.recorded.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}.`;
    } catch (error) {
      what.textContent = '';
    }
  }

  function setLive(text, ok) {
    const status = $('#live-status');
    status.textContent = text;
    status.classList.toggle('ok', !!ok);
  }

  function connectLive() {
    const source = new EventSource(`/events/live?from=${state.head + 1}`);
    source.addEventListener('open', () => setLive('live', true));
    source.addEventListener('message', (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (!(event.position > state.head)) return;
      state.head = event.position;
      showPosition();
      if (state.asOf === null) schedule(50, true);
    });
    // A dropped connection, or the server's own `event: error` before it ends the
    // stream; EventSource reconnects by itself with Last-Event-ID.
    source.addEventListener('error', () => setLive('reconnecting…', false));
  }

  async function start() {
    $('#asof-form').addEventListener('submit', (ev) => ev.preventDefault());
    slider().addEventListener('input', () => {
      const value = Number(slider().value);
      state.asOf = value >= state.head ? null : value;
      showPosition();
      schedule(120);
    });
    $('#asof-live').addEventListener('click', () => {
      state.asOf = null;
      showPosition();
      schedule(0);
    });
    window.addEventListener('hashchange', () => schedule(0));
    try {
      const stats = await api('/stats');
      state.head = stats.head.position;
    } catch (error) {
      $('#view').replaceChildren(h('p', { class: 'error', role: 'alert' }, `The server did not answer: ${error.message}`));
      return;
    }
    showPosition();
    connectLive();
    render();
  }

  start();
}());
