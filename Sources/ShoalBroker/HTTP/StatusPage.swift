/// The broker's status page, served at `GET /` and `GET /status`: one self-contained HTML
/// document (inline CSS and JavaScript, no external assets, no build step) that reads the API —
/// `/v1/pool`, `/v1/services`, `/v1/leases`, `/v1/history` and the `/v1/events` long poll — and
/// redraws as soon as an event arrives, or every two seconds without one.
///
/// Everything it shows comes from the JSON reads, so the page needs no token and changes nothing.
/// Elements the tests look for carry ids and `data-` attributes (`#history-chart`, `path.area`
/// with `data-service` and `data-last`, `body[data-updates]`).
enum StatusPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Shoal broker · status</title>
        <link rel="icon" href="data:,">
        <style>
          :root {
            --bg: #f4f6f8; --panel: #fff; --line: #e2e6eb; --text: #1f2933; --muted: #6b7785;
            --green: #1f9d55; --amber: #c27c0e; --red: #d64545; --blue: #2f6fde;
            --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
          }
          * { box-sizing: border-box; }
          body { margin: 0; background: var(--bg); color: var(--text);
                 font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", "DejaVu Sans", sans-serif; }
          header { display: flex; align-items: center; justify-content: space-between;
                   padding: 12px 24px; background: #17212b; color: #fff; }
          header h1 { margin: 0; font-size: 18px; font-weight: 600; letter-spacing: .2px; }
          header h1 .where { font-weight: 400; color: #9fb0c0; margin-left: 8px; font-size: 14px; }
          .conn { font-size: 13px; color: #c9d4de; display: flex; align-items: center; gap: 8px; }
          .dot { width: 9px; height: 9px; border-radius: 50%; background: #8a99a8; display: inline-block; }
          .conn.live .dot { background: #3ccf7a; box-shadow: 0 0 0 3px rgba(60,207,122,.25); }
          .conn.down .dot { background: #ff6b6b; }
          main { padding: 16px 24px 8px; display: grid; gap: 14px; }
          .cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 14px; }
          .card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
          .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .5px; }
          .card .value { font-size: 24px; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums; }
          .card .value small { font-size: 14px; color: var(--muted); font-weight: 400; }
          .row { display: grid; grid-template-columns: minmax(0, 1.65fr) minmax(0, 1fr); gap: 14px; }
          .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
          h2 { margin: 0 0 8px; font-size: 14px; font-weight: 600; }
          h2 .sub { color: var(--muted); font-weight: 400; margin-left: 6px; }
          table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
          th { text-align: left; font-weight: 500; color: var(--muted); font-size: 12px; padding: 4px 8px 4px 0;
               border-bottom: 1px solid var(--line); white-space: nowrap; }
          td { padding: 5px 8px 5px 0; border-bottom: 1px solid #f0f2f4; white-space: nowrap; }
          tr:last-child td { border-bottom: 0; }
          td.num, th.num { text-align: right; }
          .mono { font-family: var(--mono); font-size: 12.5px; }
          .muted { color: var(--muted); }
          .empty { color: var(--muted); padding: 10px 0; font-style: italic; }
          .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
          .badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px; font-weight: 500;
                   background: #eef1f4; color: #4a5663; }
          .st-active, .st-up, .k-ready, .k-grant, .k-host-up { background: #e3f5ea; color: var(--green); }
          .st-granted, .k-spawn, .k-request, .k-register { background: #e6eefc; color: var(--blue); }
          .st-draining, .st-cordoned, .k-drain, .k-preempt, .k-queue, .k-cordon { background: #fdf1dc; color: var(--amber); }
          .st-requested { background: #f1ecfb; color: #7048c6; }
          .st-revoked, .st-down, .k-revoke, .k-deny { background: #fde8e8; color: var(--red); }
          .slots { display: inline-flex; gap: 3px; vertical-align: middle; }
          .slot { width: 16px; height: 16px; border-radius: 3px; border: 1px solid #cfd6de; background: #f7f9fa; }
          .slot.taken { border-color: transparent; }
          .legend { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 4px; font-size: 13px; }
          .legend .now { color: var(--muted); margin-left: 4px; }
          #chart svg { display: block; }
          #chart text { font-size: 11px; fill: #7b8794; font-family: inherit; }
          td.reason { white-space: normal; color: #3e4c59; max-width: 560px; overflow: hidden; text-overflow: ellipsis;
                      display: -webkit-box; -webkit-line-clamp: 1; -webkit-box-orient: vertical; }
          footer { padding: 4px 24px 16px; color: var(--muted); font-size: 12px; }
          footer a { color: var(--muted); }
        </style>
        </head>
        <body data-updates="0">
        <header>
          <h1>Shoal broker<span class="where" id="where"></span></h1>
          <div class="conn" id="conn"><span class="dot"></span><span id="conn-text">connecting…</span></div>
        </header>
        <main>
          <section class="cards" id="summary"></section>
          <div class="row">
            <section class="panel">
              <h2>Leases per service<span class="sub" id="chart-span"></span></h2>
              <div id="chart"></div>
              <div class="legend" id="legend"></div>
            </section>
            <section class="panel">
              <h2>Pool</h2>
              <table id="pool"></table>
            </section>
          </div>
          <div class="row">
            <section class="panel">
              <h2>Leases<span class="sub">live</span></h2>
              <table id="leases"></table>
            </section>
            <section class="panel">
              <h2>Services</h2>
              <table id="services"></table>
            </section>
          </div>
          <section class="panel">
            <h2>Recent events<span class="sub">newest first</span></h2>
            <table id="events"></table>
          </section>
        </main>
        <footer>
          The same data as JSON: <a href="/v1/pool">/v1/pool</a> · <a href="/v1/services">/v1/services</a> ·
          <a href="/v1/leases">/v1/leases</a> · <a href="/v1/events">/v1/events</a> · <a href="/v1/history">/v1/history</a>
        </footer>
        <script>
        "use strict";
        const PALETTE = ["#3b7ddd", "#f0a030", "#2fb380", "#e05252", "#8b64d6", "#1fa5b5", "#d9609f", "#7d8b99"];
        const KEEP_EVENTS = 50, SHOW_EVENTS = 12;
        const state = { pool: { hosts: [] }, services: [], leases: [], history: null, events: [], updates: 0 };
        let nextEvent = 0;

        const $ = (id) => document.getElementById(id);
        const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
        const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
        const pad = (n) => String(n).padStart(2, "0");
        const clock = (ms) => { const d = new Date(ms); return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; };
        function duration(ms) {
          if (ms > 0 && ms < 950) return `${(ms / 1000).toFixed(1)} s`;
          const s = Math.max(0, Math.round(ms / 1000));
          if (s < 60) return `${s} s`;
          if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
          return `${Math.floor(s / 3600)} h ${pad(Math.floor(s / 60) % 60)} min`;
        }

        async function getJSON(path) {
          const response = await fetch(path, { cache: "no-store" });
          if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
          return response.json();
        }

        // One colour per service, stable while the page is open: by sorted name.
        function serviceNames() {
          const names = new Set(state.services.map((s) => s.name));
          state.leases.forEach((l) => names.add(l.service));
          (state.history?.samples ?? []).forEach((s) => Object.keys(s.held).concat(Object.keys(s.waiting)).forEach((n) => names.add(n)));
          return [...names].sort();
        }
        function colour(name) {
          const i = serviceNames().indexOf(name);
          return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
        }
        const swatch = (name) => `<span class="swatch" style="background:${colour(name)}"></span>`;

        function renderSummary() {
          const hosts = state.pool.hosts;
          const open = hosts.filter((h) => !h.down);
          const slots = open.reduce((n, h) => n + h.slots, 0);
          const used = hosts.reduce((n, h) => n + h.used, 0);
          const count = (st) => state.leases.filter((l) => l.state === st).length;
          const cards = [
            ["Slots in use", `${used}<small> / ${slots}</small>`],
            ["Active leases", count("active")],
            ["Starting · draining", `${count("granted")}<small> · </small>${count("draining")}`],
            ["Waiting requests", count("requested")],
            ["Hosts up", `${hosts.filter((h) => !h.down && !h.cordoned).length}<small> / ${hosts.length}</small>`],
          ];
          $("summary").innerHTML = cards.map(([label, value]) =>
            `<div class="card"><div class="label">${label}</div><div class="value">${value}</div></div>`).join("");
        }

        function renderPool() {
          const byId = new Map(state.leases.map((l) => [l.id, l]));
          const rows = state.pool.hosts.map((h) => {
            const status = h.down ? "down" : h.cordoned ? "cordoned" : "up";
            const boxes = [];
            for (let i = 0; i < Math.max(h.slots, h.leases.length); i++) {
              const lease = byId.get(h.leases[i]);
              boxes.push(lease
                ? `<span class="slot taken" style="background:${colour(lease.service)}" title="${esc(lease.id)} ${esc(lease.service)} ${esc(lease.state)}"></span>`
                : `<span class="slot" title="free"></span>`);
            }
            return `<tr data-host="${esc(h.name)}"><td class="mono">${esc(h.name)}</td>` +
              `<td><span class="badge st-${status}">${status}</span></td>` +
              `<td><span class="slots">${boxes.join("")}</span></td>` +
              `<td class="num">${h.used} / ${h.slots}</td></tr>`;
          });
          $("pool").innerHTML = rows.length
            ? `<tr><th>Host</th><th>Status</th><th>Slots</th><th class="num">Used</th></tr>${rows.join("")}`
            : `<tr><td class="empty">no hosts</td></tr>`;
        }

        function renderLeases() {
          const now = Date.now();
          const rows = [...state.leases].sort((a, b) => a.id.localeCompare(b.id)).map((l) =>
            `<tr data-lease="${esc(l.id)}"><td class="mono">${esc(l.id)}</td>` +
            `<td>${swatch(l.service)}${esc(l.service)}</td><td class="muted">${esc(l.frontend)}</td>` +
            `<td class="mono">${esc(l.host ?? "—")}</td><td><span class="badge st-${esc(l.state)}">${esc(l.state)}</span></td>` +
            `<td class="num">${duration(now - l.requestedAt)}</td><td class="num">${l.inFlight ?? "—"}</td></tr>`);
          $("leases").innerHTML = rows.length
            ? `<tr><th>Lease</th><th>Service</th><th>Front-end</th><th>Host</th><th>State</th><th class="num">Age</th><th class="num">In flight</th></tr>${rows.join("")}`
            : `<tr><td class="empty">no live leases</td></tr>`;
        }

        function renderServices() {
          const rows = state.services.map((s) =>
            `<tr data-service="${esc(s.name)}"><td>${swatch(s.name)}${esc(s.name)}</td><td class="num">${s.held}</td>` +
            `<td class="num">${s.waiting}</td><td class="num">${s.fairShare}</td>` +
            `<td class="num">${s.minBackends}–${s.maxBackends}</td><td class="num">${s.priority}</td></tr>`);
          $("services").innerHTML = rows.length
            ? `<tr><th>Service</th><th class="num">Held</th><th class="num">Waiting</th><th class="num">Fair share</th><th class="num">Min–max</th><th class="num">Priority</th></tr>${rows.join("")}`
            : `<tr><td class="empty">no front-end has registered yet</td></tr>`;
        }

        function renderEvents() {
          const rows = state.events.slice(0, SHOW_EVENTS).map((e) => {
            const change = e.fromState || e.toState ? `${esc(e.fromState ?? "")}→${esc(e.toState ?? "")}` : "";
            return `<tr data-event="${e.id}"><td class="mono muted">${clock(e.time)}</td>` +
              `<td><span class="badge k-${esc(e.kind)}">${esc(e.kind)}</span></td>` +
              `<td class="mono">${esc(e.lease ?? "")}</td><td>${e.service ? swatch(e.service) + esc(e.service) : ""}</td>` +
              `<td class="mono">${esc(e.host ?? "")}</td><td class="muted">${change}</td>` +
              `<td class="reason" title="${esc(e.reason)}">${esc(e.reason)}</td></tr>`;
          });
          $("events").innerHTML = rows.length
            ? `<tr><th>Time</th><th>Event</th><th>Lease</th><th>Service</th><th>Host</th><th>State</th><th>Why</th></tr>${rows.join("")}`
            : `<tr><td class="empty">no events yet</td></tr>`;
        }

        // A stacked step chart of the slots each service held, sample by sample; requests waiting for
        // a slot as a dashed band on top, and the pool's capacity as a dashed line.
        function renderChart() {
          const history = state.history, box = $("chart");
          const samples = history?.samples ?? [];
          const names = serviceNames();
          const W = Math.max(320, box.clientWidth || 720), H = 220;
          const m = { l: 30, r: 10, t: 10, b: 22 }, iw = W - m.l - m.r, ih = H - m.t - m.b;
          if (samples.length === 0) {
            box.innerHTML = `<div class="empty">collecting samples…</div>`;
            $("legend").innerHTML = "";
            return;
          }
          const t1 = samples[samples.length - 1].time;
          const t0 = samples[0].time - history.intervalMilliseconds;
          const span = t1 - t0;
          $("chart-span").textContent = `last ${duration(span)}, a sample every ${duration(history.intervalMilliseconds)}`;
          const capacity = state.pool.hosts.filter((h) => !h.down).reduce((n, h) => n + h.slots, 0);
          const held = (s, n) => s.held[n] ?? 0;
          const waiting = (s) => Object.values(s.waiting).reduce((a, b) => a + b, 0);
          const totals = samples.map((s) => names.reduce((a, n) => a + held(s, n), 0));
          const demand = samples.map((s, i) => totals[i] + waiting(s));
          const yMax = Math.max(1, capacity, ...demand);
          const x = (t) => m.l + ((t - t0) / span) * iw;
          const y = (v) => m.t + ih - (v / yMax) * ih;
          // Steps: a sample stands for the interval that ends with it, so the newest reaches "now".
          const steps = (values) => {
            const points = [];
            values.forEach((v, i) => {
              points.push([x(i ? samples[i - 1].time : t0), y(v)]);
              points.push([x(samples[i].time), y(v)]);
            });
            return points;
          };
          const line = (points) => points.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join("");
          const parts = [];
          const step = yMax <= 8 ? 1 : Math.ceil(yMax / 6);
          for (let v = 0; v <= yMax; v += step) {
            parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" stroke="${v ? "#eef1f4" : "#cfd6de"}"/>`);
            parts.push(`<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
          }
          const tickSeconds = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800].find((s) => span / (s * 1000) <= 6)
            ?? Math.ceil(span / 6 / 3600000) * 3600;
          for (let k = 0; k * tickSeconds * 1000 <= span; k++) {
            const s = k * tickSeconds, px = x(t1 - s * 1000);
            const label = s === 0 ? "now" : s < 60 ? `−${s} s` : s % 60 ? `−${Math.floor(s / 60)}:${pad(s % 60)}` : `−${s / 60} min`;
            parts.push(`<line x1="${px}" x2="${px}" y1="${m.t + ih}" y2="${m.t + ih + 4}" stroke="#cfd6de"/>`);
            const anchor = k === 0 ? "end" : px < m.l + 16 ? "start" : "middle";
            parts.push(`<text x="${px}" y="${H - 6}" text-anchor="${anchor}">${label}</text>`);
          }
          const below = samples.map(() => 0);
          names.forEach((name) => {
            const values = samples.map((s) => held(s, name));
            if (!values.some((v) => v > 0)) return;
            const upper = values.map((v, i) => below[i] + v);
            const area = line(steps(upper)) + line(steps(below).reverse()).replace(/^M/, "L") + "Z";
            parts.push(`<path class="area" data-service="${esc(name)}" data-points="${values.length}" data-last="${values[values.length - 1]}" ` +
              `data-max="${Math.max(...values)}" d="${area}" fill="${colour(name)}" fill-opacity="0.78"/>`);
            parts.push(`<path d="${line(steps(upper))}" fill="none" stroke="${colour(name)}" stroke-width="1.5"/>`);
            upper.forEach((v, i) => { below[i] = v; });
          });
          const waits = demand.some((d, i) => d > totals[i]);
          if (waits) {
            const band = line(steps(demand)) + line(steps(totals).reverse()).replace(/^M/, "L") + "Z";
            parts.push(`<path class="waiting" data-max="${Math.max(...demand.map((d, i) => d - totals[i]))}" d="${band}" ` +
              `fill="#7048c6" fill-opacity="0.12" stroke="#7048c6" stroke-width="1" stroke-dasharray="3 3"/>`);
          }
          if (capacity > 0) {
            parts.push(`<line class="capacity" x1="${m.l}" x2="${W - m.r}" y1="${y(capacity)}" y2="${y(capacity)}" stroke="#d64545" stroke-width="1" stroke-dasharray="5 4"/>`);
            parts.push(`<text x="${m.l + 4}" y="${y(capacity) - 4}" style="fill:#d64545">capacity ${capacity}</text>`);
          }
          box.innerHTML = `<svg id="history-chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" ` +
            `aria-label="leases per service over time" data-samples="${samples.length}">${parts.join("")}</svg>`;
          const last = samples[samples.length - 1];
          $("legend").innerHTML = names.map((n) =>
            `<span>${swatch(n)}${esc(n)}<span class="now">${held(last, n)} now</span></span>`).join("") +
            (waits ? `<span><span class="swatch" style="background:rgba(112,72,198,.18);outline:1px dashed #7048c6"></span>waiting` +
              `<span class="now">${demand[demand.length - 1] - totals[totals.length - 1]} now</span></span>` : "");
        }

        function render() {
          renderSummary(); renderPool(); renderChart(); renderLeases(); renderServices(); renderEvents();
        }

        function addEvents(events) {
          if (!events.length) return;
          state.events = events.slice().reverse().concat(state.events).slice(0, KEEP_EVENTS);
        }

        async function refresh() {
          const [pool, services, leases, history] = await Promise.all(
            ["/v1/pool", "/v1/services", "/v1/leases", "/v1/history"].map(getJSON));
          Object.assign(state, { pool, services, leases, history });
          render();
          state.updates += 1;
          document.body.dataset.updates = state.updates;
        }

        function connected(ok, detail) {
          $("conn").className = `conn ${ok ? "live" : "down"}`;
          $("conn-text").textContent = ok ? `live · updated ${clock(Date.now())}` : `broker unreachable (${detail}); retrying`;
        }

        // Start with the last events, then follow the log: a long poll answers at once when something
        // happens, else after a second; every answer redraws everything, then a second's pause.
        async function follow() {
          $("where").textContent = location.host;
          for (;;) {
            try {
              const head = await getJSON("/v1/events?after=-1");
              const recent = await getJSON(`/v1/events?after=${Math.max(0, head.next - KEEP_EVENTS)}&limit=${KEEP_EVENTS}`);
              addEvents(recent.events);
              nextEvent = Math.max(head.next, recent.next);
              await refresh();
              connected(true);
              break;
            } catch (error) {
              connected(false, error.message);
              await sleep(2000);
            }
          }
          for (;;) {
            try {
              const page = await getJSON(`/v1/events?after=${nextEvent}&limit=100&wait=1`);
              addEvents(page.events);
              nextEvent = page.next;
              await refresh();
              connected(true);
            } catch (error) {
              connected(false, error.message);
              await sleep(2000);
              continue;
            }
            await sleep(1000);
          }
        }

        window.addEventListener("resize", () => renderChart());
        follow();
        </script>
        </body>
        </html>
        """#
}
