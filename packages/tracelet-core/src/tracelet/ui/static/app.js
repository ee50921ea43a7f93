/* Tracelet UI: runs list, run page, compare page; the same code runs in `tracelet report` files.
 *
 * Safety: every string from a run (names, params, tags, console text, artifact metadata) reaches the page as
 * a text node or an attribute set through the DOM, never as HTML. In a report, data comes from the embedded
 * window.TRACELET_REPORT instead of the server (no network).
 * Tests read window.traceletCharts (chart title -> uPlot instance) and window.traceletState.
 */
(function () {
  "use strict";
  const REPORT = window.TRACELET_REPORT || null;
  const POLL_MS = Number(new URLSearchParams(location.search).get("poll") || 3000);
  const app = document.getElementById("app");
  const charts = (window.traceletCharts = {});
  const state = (window.traceletState = { page: null, polls: 0, loaded: false });
  const prefs = { x: "step", smooth: 0, log: false };
  let timer = null;
  let generation = 0; // pages replaced since; stale async work checks it

  // ---- helpers ------------------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  function api(path, params) {
    if (REPORT) {
      const key = reportKey(path, params);
      return key in REPORT.data ? Promise.resolve(REPORT.data[key]) : Promise.reject(new Error("not in this report"));
    }
    const url = path + "?" + new URLSearchParams(params || {}).toString();
    return fetch(url).then((r) => r.json().then((body) => {
      if (!r.ok) throw new Error(body.error || r.statusText);
      return body;
    }));
  }
  function reportKey(path, params) {
    params = params || {};
    if (path === "/api/runs") return "runs";
    if (path === "/api/run") return "run:" + params.id;
    return "series:" + params.id + ":" + params.x + ":" + params.metric;
  }
  function artifactUrl(runId, name, version, path) {
    return "/api/artifact?" + new URLSearchParams({ id: runId, name: name, version: version, path: path }).toString();
  }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : Number(v.toPrecision(6)).toString();
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function duration(s) {
    if (s === null || s === undefined) return "";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }
  function statusOf(run) {
    return el("span", { class: "status " + run.status, title: run.dead ? "the process died" : null },
      run.status + (run.dead ? " (process died)" : ""));
  }
  function isLive(run) { return run.status === "RUNNING" && !run.dead; }
  function isSystem(name) { return name.startsWith("system/") || name.startsWith("gpu/"); }
  function setWhere(text) { document.getElementById("where").textContent = text; }
  function setLive(text) { document.getElementById("live").textContent = text; }
  function stopPolling() { if (timer) clearTimeout(timer); timer = null; setLive(""); }
  function show(...nodes) { app.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined)); }
  function fail(err) { show(el("p", { class: "error" }, String(err && err.message ? err.message : err))); }

  // ---- charts -------------------------------------------------------------------------------------------
  const COLORS = ["#2f6fdf", "#e4572e", "#17a398", "#a05195", "#f3a712", "#5c6bc0", "#8d6e63", "#43aa8b"];

  function smooth(ys, weight) {
    if (!weight) return ys;
    const out = new Array(ys.length);
    let last = 0, n = 0;
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i];
      if (y === null || !isFinite(y)) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * y;
      n++;
      out[i] = last / (1 - Math.pow(weight, n)); // debiased, as TensorBoard does
    }
    return out;
  }

  function chartData(list, opts) {
    // list: [{x: [...], y: [...]}] possibly on different x: uPlot.join aligns them on the union of x.
    const tables = list.map((s) => {
      let ys = smooth(s.y, opts.smooth);
      if (opts.log) ys = ys.map((y) => (y !== null && y > 0 ? y : null));
      return [s.x, ys];
    });
    return tables.length === 1 ? [tables[0][0], tables[0][1]] : uPlot.join(tables);
  }

  function makeChart(box, title, labels, list, opts, onZoom) {
    const width = Math.max(box.clientWidth - 16, 300);
    const time = opts.x === "time";
    const u = new uPlot({
      width: width,
      height: 220,
      scales: { x: { time: time }, y: opts.log ? { distr: 3 } : {} },
      series: [{ label: time ? "time" : "step" }].concat(labels.map((label, i) => ({
        label: label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: labels.length > 1,
        points: { show: false },
      }))),
      axes: [{}, { size: 60 }],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      hooks: { setSelect: [(u) => { // a drag: ask the server for that range at full resolution
        if (u.select.width < 2) return;
        onZoom([u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x")]);
      }] },
    }, chartData(list, opts), box);
    u.over.addEventListener("dblclick", () => onZoom(null)); // back to the whole series
    charts[title] = u;
    return u;
  }

  function chartBox(title, note) {
    const box = el("div", { class: "chart", "data-metric": title });
    box.appendChild(el("h3", {}, title));
    if (note) box.appendChild(el("div", { class: "note" }, note));
    return box;
  }

  function controls(onChange, withX) {
    const bar = el("div", { class: "toolbar" });
    if (withX) {
      const xSel = el("select", { id: "x-axis", onchange: (e) => { prefs.x = e.target.value; onChange(); } },
        el("option", { value: "step" }, "step"), el("option", { value: "time" }, "wall time"));
      xSel.value = prefs.x;
      bar.appendChild(el("label", {}, "x axis", xSel));
    }
    const out = el("span", { class: "muted" }, prefs.smooth.toFixed(2));
    const slider = el("input", { id: "smoothing", type: "range", min: "0", max: "0.99", step: "0.01", value: prefs.smooth,
      oninput: (e) => { prefs.smooth = Number(e.target.value); out.textContent = prefs.smooth.toFixed(2); },
      onchange: () => onChange() });
    bar.appendChild(el("label", {}, "smoothing", slider, out));
    const log = el("input", { id: "log-scale", type: "checkbox", onchange: (e) => { prefs.log = e.target.checked; onChange(); } });
    log.checked = prefs.log;
    bar.appendChild(el("label", {}, log, "log scale"));
    return bar;
  }

  // Draws one chart per metric into `grid`; `runs` are [{id, name, metrics}], `metricNames` sorted. Returns a refresh
  // function that fetches the series again and updates the charts in place (live runs).
  function drawCharts(grid, runs, metricNames, x, gen) {
    const drawn = [];
    for (const name of metricNames) {
      const box = chartBox(name);
      grid.appendChild(box);
      drawn.push({ name: name, box: box, chart: null });
    }
    function fetchAll(item) {
      const width = Math.max(item.box.clientWidth - 16, 300);
      const none = { x: [], y: [], points: 0, sent: 0 };
      const query = (r) => Object.assign({ id: r.id, metric: item.name, x: x, width: width },
        item.zoom ? { xmin: item.zoom[0], xmax: item.zoom[1] } : {});
      return Promise.all(runs.map((r) => (item.name in r.metrics
        ? api("/api/series", query(r)).catch(() => none)
        : Promise.resolve(none)))); // a metric this run does not have: nothing to ask for
    }
    function updateOne(item) {
      return fetchAll(item).then((list) => {
        if (gen !== generation) return;
        const labels = runs.map((r) => (runs.length > 1 ? (r.name || r.id) + " · " + r.id : item.name));
        const opts = { x: x, smooth: prefs.smooth, log: prefs.log };
        const zoomTo = (range) => { item.zoom = range; updateOne(item); };
        if (!item.chart) item.chart = makeChart(item.box, item.name, labels, list, opts, zoomTo);
        else if (item.zoom) {
          item.chart.setData(chartData(list, opts), false);
          item.chart.setScale("x", { min: item.zoom[0], max: item.zoom[1] });
        } else item.chart.setData(chartData(list, opts));
        item.box.dataset.points = list.map((s) => s.points).join(",");
        item.box.dataset.sent = list.map((s) => s.sent).join(",");
      });
    }
    return () => Promise.all(drawn.map(updateOne));
  }

  function poll(fn) {
    if (REPORT) return;
    const gen = generation;
    timer = setTimeout(() => {
      if (gen !== generation) return;
      fn().then((again) => {
        state.polls++;
        if (again && gen === generation) poll(fn); else setLive("");
      }).catch(() => poll(fn));
    }, POLL_MS);
  }

  // ---- runs page ----------------------------------------------------------------------------------------
  const listPrefs = { text: "", project: "", status: "", tag: "", sort: "created_at", desc: true, params: null, metrics: null };

  function runsPage() {
    setWhere("runs");
    return api("/api/runs").then((data) => renderRuns(data));
  }

  function tagWords(run) {
    return run.labels.map(String).concat(Object.entries(run.tags).map(([k, v]) => k + "=" + fmt(v)));
  }

  function renderRuns(data) {
    const runs = data.runs;
    const allParams = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
    const allMetrics = [...new Set(runs.flatMap((r) => Object.keys(r.last)))].filter((m) => !isSystem(m)).sort();
    if (listPrefs.params === null) listPrefs.params = allParams.slice(0, 4);
    if (listPrefs.metrics === null) listPrefs.metrics = allMetrics.slice(0, 4);
    const projects = [...new Set(runs.map((r) => r.project || ""))].sort();
    const tags = [...new Set(runs.flatMap(tagWords))].sort();
    const selected = new Set();
    const table = el("table", { id: "runs-table" });
    const compareBtn = el("button", { id: "compare", disabled: true,
      onclick: () => { location.hash = "#/compare/" + [...selected].map(encodeURIComponent).join(","); } }, "Compare selected");

    function select(options, value, onchange, id, all) {
      const s = el("select", { id: id, onchange: (e) => { onchange(e.target.value); draw(); } },
        el("option", { value: "" }, all), options.map((o) => el("option", { value: o }, o || "(none)")));
      s.value = value;
      return s;
    }
    function columnPicker(label, names, chosen, id) {
      const box = el("details", { id: id }, el("summary", {}, label + " (" + chosen.length + ")"));
      for (const n of names) {
        const cb = el("input", { type: "checkbox", value: n, onchange: (e) => {
          if (e.target.checked) chosen.push(n); else chosen.splice(chosen.indexOf(n), 1);
          box.querySelector("summary").textContent = label + " (" + chosen.length + ")";
          draw();
        } });
        cb.checked = chosen.includes(n);
        box.appendChild(el("label", { style: "display:block" }, cb, n));
      }
      return box;
    }
    const text = el("input", { type: "text", id: "filter-text", placeholder: "filter by name, id, tag, param…", value: listPrefs.text,
      oninput: (e) => { listPrefs.text = e.target.value; draw(); } });
    const bar = el("div", { class: "toolbar" }, text,
      select(projects, listPrefs.project, (v) => (listPrefs.project = v), "filter-project", "all projects"),
      select(["RUNNING", "FINISHED", "FAILED", "KILLED"], listPrefs.status, (v) => (listPrefs.status = v), "filter-status", "any status"),
      select(tags, listPrefs.tag, (v) => (listPrefs.tag = v), "filter-tag", "any tag"),
      columnPicker("param columns", allParams, listPrefs.params, "param-columns"),
      columnPicker("metric columns", allMetrics, listPrefs.metrics, "metric-columns"),
      compareBtn);

    const cols = () => [
      { key: "name", label: "name", get: (r) => r.name || "" },
      { key: "project", label: "project", get: (r) => r.project || "" },
      { key: "status", label: "status", get: (r) => r.status || "" },
      { key: "created_at", label: "started", get: (r) => r.created_at || "" },
      { key: "duration", label: "duration", get: (r) => r.duration },
      { key: "tags", label: "tags", get: (r) => tagWords(r).join(" ") },
    ].concat(listPrefs.params.map((p) => ({ key: "param:" + p, label: p, get: (r) => r.params[p], num: true })))
      .concat(listPrefs.metrics.map((m) => ({ key: "metric:" + m, label: m, get: (r) => r.last[m], num: true })));

    function visible() {
      const t = listPrefs.text.toLowerCase();
      return runs.filter((r) => {
        if (listPrefs.project && (r.project || "") !== listPrefs.project) return false;
        if (listPrefs.status && r.status !== listPrefs.status) return false;
        if (listPrefs.tag && !tagWords(r).includes(listPrefs.tag)) return false;
        if (!t) return true;
        const hay = [r.id, r.name, r.project, ...tagWords(r), ...Object.entries(r.params).map(([k, v]) => k + "=" + fmt(v))];
        return hay.some((h) => String(h || "").toLowerCase().includes(t));
      });
    }
    function draw() {
      const columns = cols();
      const col = columns.find((c) => c.key === listPrefs.sort) || columns[3];
      const rows = visible().sort((a, b) => {
        const x = col.get(a), y = col.get(b);
        const c = x === y ? 0 : x === undefined || x === null ? 1 : y === undefined || y === null ? -1 : x < y ? -1 : 1;
        return listPrefs.desc ? -c : c;
      });
      const head = el("tr", {}, el("th", {}, ""), columns.map((c) => el("th", {
        class: "sortable" + (c.key === col.key ? (listPrefs.desc ? " sorted-desc" : " sorted-asc") : ""),
        "data-key": c.key,
        onclick: () => { listPrefs.desc = listPrefs.sort === c.key ? !listPrefs.desc : false; listPrefs.sort = c.key; draw(); },
      }, c.label)));
      const body = rows.map((r) => {
        const cb = el("input", { type: "checkbox", class: "pick", value: r.id, onchange: (e) => {
          if (e.target.checked) selected.add(r.id); else selected.delete(r.id);
          compareBtn.disabled = selected.size < 2;
        } });
        cb.checked = selected.has(r.id);
        return el("tr", { "data-run": r.id }, el("td", {}, cb),
          el("td", { class: "name" }, el("a", { href: "#/run/" + encodeURIComponent(r.id) }, r.name || r.id), el("div", { class: "muted" }, r.id)),
          el("td", {}, r.project || ""), el("td", {}, statusOf(r)), el("td", {}, (r.created_at || "").slice(0, 19).replace("T", " ")),
          el("td", { class: "num" }, duration(r.duration)),
          el("td", {}, tagWords(r).map((w) => el("span", { class: "tag" }, w))),
          listPrefs.params.map((p) => el("td", { class: "num" }, fmt(r.params[p]))),
          listPrefs.metrics.map((m) => el("td", { class: "num" }, fmt(r.last[m]))));
      });
      table.replaceChildren(el("thead", {}, head), el("tbody", {}, body));
    }
    draw();
    show(el("h1", {}, "Runs"), el("div", { class: "muted" }, runs.length + " runs in " + data.root), bar,
      runs.length ? table : el("p", { class: "muted" }, "No runs yet: start one with tracelet.start_logging(...)."));
  }

  // ---- run page -----------------------------------------------------------------------------------------
  function kvTable(obj, id) {
    const keys = Object.keys(obj).sort();
    if (!keys.length) return el("p", { class: "muted", id: id }, "none");
    return el("table", { id: id, class: "kv" }, el("tbody", {}, keys.map((k) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(obj[k]))))));
  }

  function runHeader(run) {
    return [el("h1", { id: "run-name" }, run.name || run.id),
      el("div", { class: "meta" }, statusOf(run), el("span", {}, "id " + run.id), el("span", {}, "project " + (run.project || "")),
        el("span", {}, "started " + (run.created_at || "").slice(0, 19).replace("T", " ")), el("span", {}, "duration " + duration(run.duration)),
        el("span", {}, (run.events || 0) + " events"))];
  }

  function runPage(id) {
    setWhere("run " + id);
    return api("/api/run", { id: id }).then((run) => renderRun(run));
  }

  function renderRun(run) {
    const gen = generation;
    const names = Object.keys(run.metrics).sort();
    const user = names.filter((n) => !isSystem(n));
    const system = names.filter(isSystem);
    const header = el("div", {}, runHeader(run));
    const grid = el("div", { class: "charts", id: "metric-charts" });
    const sysGrid = el("div", { class: "charts", id: "system-charts" });
    const ref = [{ id: run.id, name: run.name, metrics: run.metrics }];
    const rerender = () => { generation++; renderRun(run); };
    show(header, controls(rerender, true),
      el("h2", {}, "Metrics"), user.length ? grid : el("p", { class: "muted" }, "no metrics"),
      el("h2", {}, "Params"), kvTable(run.params, "params"),
      el("h2", {}, "Tags"), run.labels.length ? el("div", {}, run.labels.map((t) => el("span", { class: "tag" }, t))) : null,
      kvTable(run.tags, "tags"),
      el("h2", {}, "Artifacts"), artifactsTable(run),
      el("h2", {}, "Console"), run.console ? el("pre", { class: "console", id: "console" }, run.console.text)
        : el("p", { class: "muted" }, "no console captured (the stdout collector stores it)"),
      el("h2", {}, "Delivery"), deliveryBlock(run),
      system.length ? el("h2", {}, "System metrics (x: wall time)") : null, system.length ? sysGrid : null);
    const update = drawCharts(grid, ref, user, prefs.x, gen);
    const updateSys = drawCharts(sysGrid, ref, system, "time", gen);
    return Promise.all([update(), updateSys()]).then(() => {
      if (!isLive(run)) return;
      setLive("live: updating every " + POLL_MS / 1000 + " s");
      poll(() => api("/api/run", { id: run.id }).then((now) => {
        if (gen !== generation) return false;
        const same = Object.keys(now.metrics).sort().join("\n") === names.join("\n");
        if (!same) { generation++; renderRun(now); return false; } // new metrics: draw the page again
        header.replaceChildren(...runHeader(now));
        return Promise.all([update(), updateSys()]).then(() => isLive(now) || (setLive(""), false));
      }));
    });
  }

  function artifactsTable(run) {
    if (!run.artifacts.length) return el("p", { class: "muted" }, "no artifacts");
    return el("table", { id: "artifacts" }, el("thead", {}, el("tr", {}, ["name", "version", "type", "files", "metadata"].map((h) => el("th", {}, h)))),
      el("tbody", {}, run.artifacts.map((a) => el("tr", { "data-artifact": a.name + ":" + a.version },
        el("td", {}, a.name, a.description ? el("div", { class: "muted" }, a.description) : null),
        el("td", {}, a.version || ""), el("td", {}, a.type),
        el("td", {}, a.files.map((f) => {
          const url = artifactUrl(run.id, a.name, a.version, f.path);
          const link = REPORT ? el("span", {}, f.path) : el("a", { href: url, download: f.path.split("/").pop() }, f.path);
          const src = REPORT ? f.data_url : url; // a report embeds small images; the server serves any
          const preview = f.image && src ? el("img", { class: "preview", src: src, alt: f.path }) : null;
          return el("div", {}, link, el("span", { class: "muted" }, " " + fmt(f.size) + " B"), preview);
        })),
        el("td", {}, Object.keys(a.metadata).length ? el("code", {}, JSON.stringify(a.metadata)) : "")))));
  }

  function deliveryBlock(run) {
    const d = run.delivery;
    const rows = d.backends.length ? el("table", { id: "delivery" }, el("tbody", {}, d.backends.map((b) =>
      el("tr", {}, el("th", {}, b.backend), el("td", {}, b.state)))))
      : el("p", { class: "muted" }, "local store only: nothing to deliver");
    return el("div", {}, rows, d.sync ? el("p", {}, "Finish it with ", el("code", { class: "cmd", id: "sync-line" }, d.sync)) : null);
  }

  // ---- compare page -------------------------------------------------------------------------------------
  function comparePage(ids) {
    setWhere("compare " + ids.length + " runs");
    return Promise.all(ids.map((id) => api("/api/run", { id: id }))).then((runs) => renderCompare(runs));
  }

  function renderCompare(runs) {
    const gen = generation;
    const names = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].filter((n) => !isSystem(n)).sort();
    const grid = el("div", { class: "charts", id: "metric-charts" });
    const keys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
    const params = el("table", { id: "params-diff" },
      el("thead", {}, el("tr", {}, el("th", {}, "param"), runs.map((r) => el("th", {}, (r.name || r.id) + " · " + r.id)))),
      el("tbody", {}, keys.map((k) => {
        const vals = runs.map((r) => fmt(r.params[k]));
        const differs = new Set(vals).size > 1;
        return el("tr", { class: differs ? "diff" : null, "data-param": k }, el("th", {}, k), vals.map((v) => el("td", {}, v)));
      })));
    const rerender = () => { generation++; renderCompare(runs); };
    const heads = (list) => list.map((r) => el("span", {}, el("a", { href: "#/run/" + encodeURIComponent(r.id) }, r.name || r.id), " ", statusOf(r)));
    const meta = el("div", { class: "meta" }, heads(runs));
    show(el("h1", {}, "Compare"), meta,
      controls(rerender, true), el("h2", {}, "Metrics"), grid,
      el("h2", {}, "Params (differences highlighted)"), params);
    const update = drawCharts(grid, runs.map((r) => ({ id: r.id, name: r.name, metrics: r.metrics })), names, prefs.x, gen);
    return update().then(() => {
      if (!runs.some(isLive)) return;
      setLive("live: updating every " + POLL_MS / 1000 + " s");
      poll(() => Promise.all(runs.map((r) => api("/api/run", { id: r.id }))).then((now) => {
        if (gen !== generation) return false;
        meta.replaceChildren(...heads(now));
        return update().then(() => now.some(isLive));
      }));
    });
  }

  // ---- routing ------------------------------------------------------------------------------------------
  function route() {
    generation++;
    stopPolling();
    for (const k of Object.keys(charts)) { charts[k].destroy(); delete charts[k]; }
    state.loaded = false;
    const hash = location.hash || (REPORT ? REPORT.start : "#/");
    const parts = hash.replace(/^#\/?/, "").split("/");
    let done;
    if (parts[0] === "run" && parts[1]) { state.page = "run"; done = runPage(decodeURIComponent(parts[1])); }
    else if (parts[0] === "compare" && parts[1]) { state.page = "compare"; done = comparePage(parts[1].split(",").map(decodeURIComponent)); }
    else { state.page = "runs"; done = runsPage(); }
    done.then(() => { state.loaded = true; }, (err) => { fail(err); state.loaded = true; });
  }
  window.addEventListener("hashchange", route);
  route();
})();
