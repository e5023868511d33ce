// The live voting page. Plain JavaScript, no build step, no inline code (the CSP forbids it).
//
// Invariants:
// - Options come only from the API's results (GET /api/results and the `results` events of
//   /api/results/stream); nothing here names an option.
// - Data is written with textContent only, never parsed as HTML.
// - Stream events arrive in order and always win: a snapshot fetched with GET is dropped if an event
//   came in while it was in flight, so the bars never step back.
// - When the stream drops, the page says "Reconnecting", retries with capped backoff by itself, and
//   re-reads the results once it is back.
'use strict';

(() => {
  const RESULTS_URL = '/api/results';
  const STREAM_URL = '/api/results/stream';
  const VOTE_URL = '/api/vote';
  const RESULTS_EVENT = 'results';
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 5000;
  const HUES = 8;

  const $ = (id) => document.getElementById(id);
  const el = {
    connection: $('connection'),
    connectionText: $('connection-text'),
    options: $('options'),
    feedback: $('feedback'),
    results: $('results'),
    total: $('total-votes'),
    totalLabel: $('total-label'),
    updated: $('last-updated'),
  };

  let optionsKey = '';
  let counts = new Map();
  let eventsSeen = 0;
  let source = null;
  let retryTimer = 0;
  let retryDelay = RETRY_MIN_MS;
  let connected = false;

  const display = (option) => option.replace(/-/g, ' ');
  const plural = (n, word) => `${word}${n === 1 ? '' : 's'}`;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function make(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === 'text') node.textContent = value;
      else if (key === 'className') node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function setConnection(state, text) {
    if (el.connection.dataset.state === state) return;
    el.connection.dataset.state = state;
    el.connectionText.textContent = text;
  }

  function setFeedback(text, kind) {
    el.feedback.dataset.kind = kind;
    el.feedback.textContent = text;
  }

  // --- Rendering -------------------------------------------------------------------------------

  function build(results) {
    const buttons = results.map(({ option }, i) => {
      const button = make('button', {
        type: 'button',
        className: 'vote-button',
        id: `vote-${option}`,
        'data-option': option,
        'data-hue': String(i % HUES),
        'aria-label': `Vote for ${display(option)}`,
      }, [
        make('span', { className: 'badge', 'aria-hidden': 'true', text: option.charAt(0) }),
        make('span', { className: 'option-name', text: display(option) }),
      ]);
      button.addEventListener('click', () => vote(option, button));
      return button;
    });
    el.options.replaceChildren(...buttons);
    el.options.setAttribute('aria-busy', 'false');

    const rows = results.map(({ option }, i) => make('li', {
      className: 'result',
      id: `result-${option}`,
      'data-option': option,
      'data-hue': String(i % HUES),
    }, [
      make('div', { className: 'result-line' }, [
        make('span', { className: 'result-name', text: display(option) }),
        make('span', { className: 'result-figures' }, [
          make('span', { className: 'result-count', id: `count-${option}`, text: '0' }),
          make('span', { className: 'result-unit', id: `unit-${option}`, text: ' votes' }),
          ' · ',
          make('span', { className: 'result-percent', id: `percent-${option}`, text: '0.0%' }),
        ]),
      ]),
      make('div', { className: 'bar', 'aria-hidden': 'true' }, [
        make('div', { className: 'bar-fill', id: `bar-${option}` }),
      ]),
    ]));
    el.results.replaceChildren(...rows);
    counts = new Map();
  }

  function render(data) {
    if (!data || !Array.isArray(data.results)) return;
    const key = data.results.map((r) => r.option).join(',');
    if (key !== optionsKey) {
      build(data.results);
      optionsKey = key;
    }
    const max = Math.max(0, ...data.results.map((r) => r.count));
    const leaders = data.results.filter((r) => r.count === max).length;
    for (const { option, count, percentage } of data.results) {
      const row = $(`result-${option}`);
      const previous = counts.get(option);
      $(`count-${option}`).textContent = String(count);
      $(`unit-${option}`).textContent = ` ${plural(count, 'vote')}`;
      $(`percent-${option}`).textContent = `${Number(percentage).toFixed(1)}%`;
      // The CSSOM is allowed by the CSP; a style attribute would not be.
      $(`bar-${option}`).style.width = `${Math.min(100, Math.max(0, percentage))}%`;
      row.dataset.leading = String(max > 0 && count === max && leaders === 1);
      row.setAttribute('aria-label',
        `${display(option)}: ${count} ${plural(count, 'vote')}, ${Number(percentage).toFixed(1)} percent`);
      if (previous !== undefined && count > previous) {
        row.classList.remove('bumped');
        void row.offsetWidth; // restart the animation
        row.classList.add('bumped');
      }
      counts.set(option, count);
    }
    el.total.textContent = String(data.total_votes);
    el.totalLabel.textContent = plural(data.total_votes, 'vote');
    renderUpdated(data.last_updated);
  }

  function renderUpdated(stamp) {
    const when = stamp ? new Date(stamp) : null;
    if (!when || Number.isNaN(when.getTime())) {
      el.updated.removeAttribute('datetime');
      el.updated.textContent = 'none yet';
      return;
    }
    const sameDay = when.toDateString() === new Date().toDateString();
    el.updated.setAttribute('datetime', stamp);
    el.updated.textContent = sameDay
      ? when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
      : when.toLocaleString([], { dateStyle: 'medium', timeStyle: 'medium' });
    el.updated.title = when.toISOString();
  }

  // --- Reading results ---------------------------------------------------------------------------

  async function refresh() {
    const seenBefore = eventsSeen;
    try {
      const response = await fetch(RESULTS_URL, { headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      if (eventsSeen === seenBefore) render(data);
    } catch (_) {
      if (!optionsKey) {
        el.options.replaceChildren(make('p', {
          className: 'placeholder',
          text: 'The results are not available yet; retrying…',
        }));
      }
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    source = new EventSource(STREAM_URL);
    source.addEventListener('open', () => {
      connected = true;
      retryDelay = RETRY_MIN_MS;
      setConnection('live', 'Live');
      refresh();
    });
    source.addEventListener(RESULTS_EVENT, (event) => {
      eventsSeen += 1;
      connected = true;
      setConnection('live', 'Live');
      try {
        render(JSON.parse(event.data));
      } catch (_) {
        // A malformed event is skipped; the next one or the next refresh repairs the view.
      }
    });
    source.addEventListener('error', () => {
      // EventSource gives up for good on an HTTP error (e.g. 502 while the API restarts), so the
      // retry is ours in every case.
      source.close();
      source = null;
      connected = false;
      setConnection('reconnecting', 'Reconnecting…');
      const jitter = 0.8 + Math.random() * 0.4;
      retryTimer = setTimeout(connect, retryDelay * jitter);
      retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
    });
  }

  function reconnectNow() {
    if (connected) return;
    retryDelay = RETRY_MIN_MS;
    connect();
  }

  // --- Voting ------------------------------------------------------------------------------------

  function newIdempotencyKey() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    // crypto.randomUUID needs a secure context; getRandomValues does not.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // One retry on a network error or a gateway answer: the Idempotency-Key makes it count once.
  async function postVote(option) {
    const init = {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        'Idempotency-Key': newIdempotencyKey(),
      },
      body: JSON.stringify({ option }),
    };
    try {
      const response = await fetch(VOTE_URL, init);
      if (![502, 503, 504].includes(response.status)) return response;
    } catch (_) {
      // Fall through to the retry.
    }
    await sleep(600);
    return fetch(VOTE_URL, init);
  }

  async function vote(option, button) {
    if (button.getAttribute('aria-busy') === 'true') return;
    button.setAttribute('aria-busy', 'true');
    setFeedback('Sending your vote…', 'pending');
    try {
      const response = await postVote(option);
      const body = await response.json().catch(() => null);
      if (response.ok) {
        for (const b of el.options.querySelectorAll('.vote-button')) delete b.dataset.voted;
        button.dataset.voted = 'true';
        setFeedback(`Thanks! Your vote for ${display(option)} was recorded.`, 'ok');
      } else {
        const message = body && (body.detail || body.error);
        setFeedback(message ? `Vote not recorded: ${message}` : `Vote not recorded (HTTP ${response.status}).`, 'error');
      }
    } catch (_) {
      setFeedback('Vote not recorded: the server cannot be reached. Check your connection and try again.', 'error');
    } finally {
      button.removeAttribute('aria-busy');
    }
  }

  // --- Start ---------------------------------------------------------------------------------------

  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') reconnectNow();
  });
  setConnection('connecting', 'Connecting…');
  refresh();
  connect();
})();
