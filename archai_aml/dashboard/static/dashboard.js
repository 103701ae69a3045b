// archai-aml dashboard: draws the page from /api/state (a long poll with If-None-Match) and /api/model.
// Every stored string goes into the page as text (textContent, text nodes, setAttribute of data-*): no
// innerHTML, no markup built from data. Links point only to this server's own routes.
"use strict";
(function () {
  const body = document.body;
  const POLL_MS = Number(body.dataset.pollMs) || 2000;
  const query = new URLSearchParams(window.location.search);
  const S = {
    experiment: query.get("experiment") || body.dataset.experiment,
    x: query.get("x"), y: query.get("y"),
    mx: query.get("mx") === "1", my: query.get("my") !== "0",
    etag: null, view: null, abort: null, clockOffset: 0,
    sort: { col: 0, desc: false }, status: "", text: "", page: 0, pageSize: 25,
  };
  const SVG = "http://www.w3.org/2000/svg";

  // ------------------------------------------------------------------------------------------ helpers
  function own(path, params) {
    // a URL of this server only: a fixed path and URL-encoded parameters
    return path + "?" + new URLSearchParams(params).toString();
  }
  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined) continue;
      if (key === "href") {
        if (!String(value).startsWith("/") || String(value).startsWith("//")) throw new Error("foreign link");
        node.setAttribute("href", value);
      } else if (key === "text") node.textContent = String(value);
      else if (key === "onclick" || key === "onchange" || key === "oninput") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children || []) node.append(typeof child === "string" ? document.createTextNode(child) : child);
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function fmt(v) {
    if (typeof v !== "number") return String(v);
    return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : String(Number(v.toPrecision(6)));
  }
  function age(iso) {
    if (!iso) return "never";
    const s = Math.max(0, (Date.now() + S.clockOffset - Date.parse(iso)) / 1000);
    return s < 120 ? s.toFixed(0) + " s ago" : s < 7200 ? (s / 60).toFixed(0) + " min ago" : (s / 3600).toFixed(1) + " h ago";
  }
  function until(iso) {
    const s = (Date.parse(iso) - Date.now() - S.clockOffset) / 1000;
    return s >= 0 ? "in " + s.toFixed(0) + " s" : s.toFixed(0) + " s ago";
  }
  function section(id, title, children) {
    return el("section", { id: id }, [el("h2", { text: title }), ...children]);
  }
  function table(id, head, rows) {
    return el("table", { id: id }, [
      el("thead", {}, [el("tr", {}, head.map((h) => el("th", { text: h })))]),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => (c instanceof Node ? el("td", {}, [c]) : el("td", { text: c })))))),
    ]);
  }
  function banner(text) {
    const b = document.getElementById("banner");
    b.textContent = text || "";
    b.hidden = !text;
  }
  function modelLink(experiment, name) {
    return el("a", { href: own("/model", { experiment: experiment, name: name }), class: "model-link", text: name });
  }
  function syncUrl() {
    const p = { experiment: S.experiment };
    if (S.x) p.x = S.x;
    if (S.y) p.y = S.y;
    if (S.mx) p.mx = "1";
    if (!S.my) p.my = "0";
    window.history.replaceState(null, "", own("/", p));
  }

  // ------------------------------------------------------------------------------------------ polling
  async function pollState() {
    for (;;) {
      const params = { experiment: S.experiment, mx: S.mx ? "1" : "0", my: S.my ? "1" : "0" };
      if (S.x) params.x = S.x;
      if (S.y) params.y = S.y;
      if (S.etag) params.wait = "1";
      S.abort = new AbortController();
      try {
        const r = await fetch(own("/api/state", params), {
          headers: S.etag ? { "If-None-Match": S.etag } : {}, cache: "no-store", signal: S.abort.signal,
        });
        const date = r.headers.get("Date");
        if (date) S.clockOffset = Date.parse(date) - Date.now();
        if (r.status === 200) {
          S.etag = r.headers.get("ETag");
          S.view = await r.json();
          renderOverview();
        } else if (r.status !== 304) {
          banner("The dashboard server answered " + r.status + ": " + (await r.text()).slice(0, 300));
          await sleep(POLL_MS);
        } else if (S.view) {
          renderBanner();
        }
      } catch (e) {
        if (e.name !== "AbortError") {
          banner("The dashboard server does not answer (" + e.message + "); trying again.");
          await sleep(POLL_MS);
        }
      }
    }
  }
  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }
  function refetch() {
    S.etag = null;
    syncUrl();
    if (S.abort) S.abort.abort();
  }

  // ------------------------------------------------------------------------------------------ overview
  function renderBanner() {
    const o = S.view && S.view.outage;
    banner(o ? "The store does not answer since " + o.since + " (" + o.error + "): showing the last data read." : "");
  }
  function renderOverview() {
    renderBanner();
    const data = S.view.data;
    const main = document.getElementById("main");
    const nav = document.getElementById("experiments");
    if (!data) {
      main.replaceChildren(el("p", { class: "loading", text: "No data read from the store yet." }));
      return;
    }
    nav.replaceChildren(...data.experiments.map((e) =>
      el("a", { href: own("/", { experiment: e }), class: e === data.experiment ? "current" : "" , text: e })));
    const scroll = window.scrollY;
    main.replaceChildren(summary(data), frontSection(data), statusSection(data), runnersSection(data),
      failuresSection(data), usageSection(data));
    window.scrollTo(0, scroll);
  }
  function summary(data) {
    const total = data.table.rows.length;
    const counts = Object.entries(data.counts).map(([k, v]) => k + ": " + v).join(", ");
    return section("summary", "Experiment", [
      el("p", {}, [
        el("span", { id: "iterations", text: "iterations so far: " + data.iterations }), " · ",
        el("span", { id: "model-count", text: "rows: " + total }), " · ",
        el("span", { id: "status-counts", text: "by status: " + (counts || "none") }),
        data.partner ? " · latency rows from " : "", data.partner ? el("code", { text: data.partner }) : "",
      ]),
    ]);
  }

  function axisSelect(id, value, axes, onchange) {
    return el("select", { id: id, onchange: onchange }, axes.map((a) => {
      const o = el("option", { value: a, text: a });
      o.selected = a === value;
      return o;
    }));
  }
  function frontSection(data) {
    const f = S.view.front;
    const controls = el("p", { class: "controls" }, [
      "x ", axisSelect("x-axis", f.x, f.axes, (e) => { S.x = e.target.value; refetch(); }),
      el("label", {}, [maxBox("mx-box", S.mx, (v) => { S.mx = v; }), " maximize"]),
      "   y ", axisSelect("y-axis", f.y, f.axes, (e) => { S.y = e.target.value; refetch(); }),
      el("label", {}, [maxBox("my-box", S.my, (v) => { S.my = v; }), " maximize"]),
    ]);
    const legend = el("p", { class: "legend", text:
      "filled blue: iteration " + f.last_iteration + " (newest); gray: earlier iterations, fading with age; " +
      "red ring and line: Pareto front; hollow dashed: predicted figure; dashed orange: simulated figure. " +
      "Hover a point for its figures, click it for the model." });
    return section("front-section", "Pareto front (" + f.front.length + " of " + f.points.length + " models)",
      [controls, drawFront(f, data.experiment), legend, el("div", { id: "tooltip", class: "tooltip", hidden: "" })]);
  }
  function maxBox(id, checked, set) {
    const box = el("input", { id: id, type: "checkbox", onchange: (e) => { set(e.target.checked); refetch(); } });
    box.checked = checked;
    return box;
  }
  function drawFront(f, experiment) {
    const W = 720, H = 420, L = 70, R = 20, T = 16, B = 48;
    const root = svg("svg", { id: "front", viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img" });
    root.append(svg("title", {}, "Pareto front of " + f.y + " against " + f.x));
    if (!f.points.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no model has both " + f.x + " and " + f.y + " yet"));
      return root;
    }
    const xs = f.points.map((p) => p.x), ys = f.points.map((p) => p.y);
    const span = (v) => {  // the data's range and 8 % more, not below 0 when every value is positive
      const lo = Math.min(...v), hi = Math.max(...v), pad = (hi - lo || Math.abs(hi) || 1) * 0.08;
      return [lo >= 0 ? Math.max(0, lo - pad) : lo - pad, hi + pad];
    };
    const [x0, x1] = span(xs), [y0, y1] = span(ys);
    const sx = (v) => L + ((v - x0) / (x1 - x0)) * (W - L - R);
    const sy = (v) => H - B - ((v - y0) / (y1 - y0)) * (H - T - B);
    const axes = svg("g", { class: "axes" });
    axes.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B }), svg("line", { x1: L, y1: T, x2: L, y2: H - B }));
    for (let i = 0; i <= 4; i++) {
      const vx = x0 + ((x1 - x0) * i) / 4, vy = y0 + ((y1 - y0) * i) / 4;
      axes.append(svg("text", { x: sx(vx), y: H - B + 16, "text-anchor": "middle" }, fmt(vx)));
      axes.append(svg("text", { x: L - 6, y: sy(vy) + 4, "text-anchor": "end" }, fmt(vy)));
    }
    axes.append(svg("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle", class: "label" },
      f.x + " (" + (f.maximize_x ? "higher" : "lower") + " is better)"));
    axes.append(svg("text", { x: 14, y: (T + H - B) / 2, "text-anchor": "middle", class: "label",
      transform: "rotate(-90 14 " + (T + H - B) / 2 + ")" }, f.y + " (" + (f.maximize_y ? "higher" : "lower") + " is better)"));
    root.append(axes);
    const byName = new Map(f.points.map((p) => [p.name, p]));
    const front = f.front.map((n) => byName.get(n));
    if (front.length) {
      let d = "M" + sx(front[0].x) + " " + sy(front[0].y);
      for (let i = 1; i < front.length; i++) d += " H" + sx(front[i].x) + " V" + sy(front[i].y);
      root.append(svg("path", { d: d, class: "front-line" }));
    }
    const ordered = f.points.slice().sort((a, b) => a.iteration - b.iteration);
    for (const p of ordered) {
      const marks = Object.values(p.marks);
      const cls = ["point", p.iteration === f.last_iteration ? "new" : "old", p.on_front ? "on-front" : "",
        marks.includes("predicted") ? "predicted" : "", marks.includes("simulated") ? "simulated" : ""].filter(Boolean).join(" ");
      const c = svg("circle", { cx: sx(p.x), cy: sy(p.y), r: p.on_front ? 7 : 5, class: cls, "fill-opacity": p.opacity,
        "data-name": p.name, "data-x": p.x, "data-y": p.y, "data-iteration": p.iteration });
      const lines = describe(p, f);
      c.append(svg("title", {}, lines.join("\n")));
      c.addEventListener("mouseenter", (e) => showTip(lines, e));
      c.addEventListener("mouseleave", () => { document.getElementById("tooltip").hidden = true; });
      c.addEventListener("click", () => { window.location.assign(own("/model", { experiment: experiment, name: p.name })); });
      root.append(c);
    }
    return root;
  }
  function describe(p, f) {
    const mark = (col) => (p.marks[col] ? " (" + p.marks[col] + ")" : "");
    return [p.name, f.x + ": " + fmt(p.x) + mark(f.x), f.y + ": " + fmt(p.y) + mark(f.y),
      "iteration " + p.iteration + (p.status ? ", " + p.status : "") + (p.on_front ? ", on the Pareto front" : "")];
  }
  function showTip(lines, event) {
    const tip = document.getElementById("tooltip");
    tip.replaceChildren(...lines.map((l, i) => el(i ? "div" : "strong", { text: l })));
    tip.hidden = false;
    tip.style.left = event.pageX + 12 + "px";
    tip.style.top = event.pageY + 12 + "px";
  }

  function statusSection(data) {
    const t = data.table;
    const statuses = Object.keys(data.counts);
    const filter = el("select", { id: "status-filter", onchange: (e) => { S.status = e.target.value; S.page = 0; renderOverview(); } },
      ["", ...statuses].map((s) => { const o = el("option", { value: s, text: s || "every status" }); o.selected = s === S.status; return o; }));
    const text = el("input", { id: "text-filter", type: "search", placeholder: "filter by text", value: S.text,
      oninput: (e) => { S.text = e.target.value; S.page = 0; redrawTable(data); } });
    const holder = el("div", { id: "status-holder" });
    const sec = section("status", "Status table", [el("p", { class: "controls" }, [filter, " ", text]), holder]);
    fillTable(holder, data);
    return sec;
  }
  function redrawTable(data) {
    const holder = document.getElementById("status-holder");
    fillTable(holder, data);
    const box = document.getElementById("text-filter");
    if (box) box.focus();
  }
  function cmp(a, b) {
    if (a[0] !== b[0]) return a[0] - b[0];
    return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
  }
  function fillTable(holder, data) {
    const t = data.table;
    const needle = S.text.toLowerCase();
    let rows = t.rows.filter((r) => (!S.status || (r.status || "(none)") === S.status) &&
      (!needle || r.cells.some((c) => c.toLowerCase().includes(needle))));
    const col = Math.min(S.sort.col, t.columns.length - 1);
    rows = rows.slice().sort((a, b) => (S.sort.desc ? -1 : 1) * cmp(a.keys[col], b.keys[col]));
    const pages = Math.max(1, Math.ceil(rows.length / S.pageSize));
    S.page = Math.min(S.page, pages - 1);
    const shown = rows.slice(S.page * S.pageSize, (S.page + 1) * S.pageSize);
    const head = el("tr", {}, t.columns.map((c, i) => el("th", { class: "sortable", "data-column": c,
      onclick: () => { S.sort = { col: i, desc: S.sort.col === i ? !S.sort.desc : false }; fillTable(holder, data); },
      text: c + (i === col ? (S.sort.desc ? " ▼" : " ▲") : "") })));
    const nameAt = t.columns.indexOf("name");
    const body = el("tbody", {}, shown.map((r) => el("tr", { "data-name": r.name }, r.cells.map((c, i) =>
      i === nameAt ? el("td", {}, [modelLink(data.experiment, c)]) : el("td", { text: c })))));
    const pager = el("p", { class: "pager" }, [
      el("button", { id: "prev-page", type: "button", onclick: () => { S.page = Math.max(0, S.page - 1); fillTable(holder, data); } }, ["‹ previous"]),
      el("span", { id: "page-info", text: " rows " + (rows.length ? S.page * S.pageSize + 1 : 0) + "–" +
        Math.min(rows.length, (S.page + 1) * S.pageSize) + " of " + rows.length + " (page " + (S.page + 1) + "/" + pages + ") " }),
      el("button", { id: "next-page", type: "button", onclick: () => { S.page = Math.min(pages - 1, S.page + 1); fillTable(holder, data); } }, ["next ›"]),
    ]);
    holder.replaceChildren(el("table", { id: "status-table" }, [el("thead", {}, [head]), body]), pager);
  }

  function runnersSection(data) {
    const rows = data.runners.map((r) => {
      const holds = r.holds.map((h) => h.name + " (lease expires " + until(h.expires) + ")").join("; ");
      const state = r.presumed_dead ? "presumed dead" : r.state;
      return [r.owner, r.node, r.target, r.device, el("span", { class: r.presumed_dead ? "dead" : "", text: state }),
        r.item, el("span", { class: "age", "data-seen": r.last_seen || "", text: age(r.last_seen) }), holds || "—",
        String(r.done), String(r.failed)];
    });
    return section("runners", "Runner fleet (" + data.runners.length + ")", rows.length ? [
      table("runners-table", ["runner", "node", "target", "device", "state", "item", "last heartbeat",
        "holds", "done (node)", "failed (node)"], rows),
      el("p", { class: "note", text: "presumed dead: no heartbeat for " + data.dead_after_s + " s and never said it stopped" }),
    ] : [el("p", { text: "No runner has written a heartbeat for this experiment." })]);
  }
  function failuresSection(data) {
    const rows = data.failures.map((f) => [f.partition, modelLink(f.partition, f.name), f.status,
      el("pre", { class: "error", text: f.error }), f.log || "—"]);
    return section("failures", "Failures (" + rows.length + ")", rows.length ?
      [table("failures-table", ["experiment", "model", "status", "error", "log"], rows)] : [el("p", { text: "No row is in error." })]);
  }
  function usageSection(data) {
    const rows = data.usage.map((u) => [u.device, u.day, String(u.items), u.busy_h.toFixed(3), (100 * u.utilization).toFixed(1) + " %"]);
    return section("usage", "Device usage per day (UTC)", rows.length ?
      [table("usage-table", ["device", "day", "items", "busy h", "utilization"], rows)] : [el("p", { text: "No device usage recorded." })]);
  }

  // ------------------------------------------------------------------------------------------ model page
  async function pollModel() {
    const name = query.get("name") || "";
    let etag = null;
    for (;;) {
      try {
        const r = await fetch(own("/api/model", { experiment: S.experiment, name: name }), {
          headers: etag ? { "If-None-Match": etag } : {}, cache: "no-store" });
        if (r.status === 200) {
          etag = r.headers.get("ETag");
          banner("");
          renderModel(await r.json());
        } else if (r.status !== 304) {
          const answer = await r.json().catch(() => ({ error: String(r.status) }));
          banner(r.status === 503 ? "The store does not answer (" + answer.error + "): showing the last data read." : answer.error);
        }
      } catch (e) {
        banner("The dashboard server does not answer (" + e.message + "); trying again.");
      }
      await sleep(POLL_MS);
    }
  }
  function renderModel(m) {
    document.getElementById("experiments").replaceChildren(
      el("a", { href: own("/", { experiment: m.experiment }), id: "back", text: "← " + m.experiment }));
    const parts = m.rows.map((part) => section("row-" + part.partition, "Row in " + part.partition, [
      table("columns-" + part.partition, ["column", "value", ""], part.columns.map(([k, v]) => [k, v, part.marks[k] || ""])),
    ]));
    const sources = Object.entries(m.sources);
    const blobs = m.blobs.map((b) => [b.kind, b.partition, el("a", { class: "download",
      href: own("/download", { experiment: b.partition, name: m.name, blob: b.blob }), text: b.blob })]);
    document.getElementById("main").replaceChildren(
      el("h2", { id: "model-name", text: m.name }),
      ...parts,
      section("sources", "Where each figure came from", sources.length ?
        [table("sources-table", ["figure", "source"], sources)] : [el("p", { text: "No sources recorded." })]),
      section("artifacts", "Stored artifacts", blobs.length ?
        [table("artifacts-table", ["kind", "experiment", "blob (download)"], blobs)] : [el("p", { text: "No blobs stored." })]));
  }

  // ------------------------------------------------------------------------------------------ start
  setInterval(() => {
    for (const span of document.querySelectorAll("span.age")) span.textContent = age(span.getAttribute("data-seen"));
  }, 1000);
  if (window.location.pathname === "/model") pollModel();
  else pollState();
})();
