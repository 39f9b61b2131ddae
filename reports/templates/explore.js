/* wattsweep report: the interactive accuracy-energy chart, drawn with uPlot (inlined before this code).
 * Data: the JSON island #ws-explore-data (reports/interactive.py, chart_data). The page opens zoomed to the
 * Pareto front; drag a box to zoom, wheel to zoom, Shift+drag to pan, double-click or "Show all trials" to see
 * every trial; a legend entry hides or shows its trials; hover a point for its configuration and figures.
 * Text from the run (trial ids, config values) only ever reaches the page through textContent.
 */
(function () {
  "use strict";
  var island = document.getElementById("ws-explore-data");
  var root = document.getElementById("ws-explore");
  if (!island || !root || typeof uPlot === "undefined") { return; }
  var d = JSON.parse(island.textContent);
  var n = d.x.length;
  var HEIGHT = 440, HOVER_PX = 24;

  // why sorted: uPlot's aligned mode needs ascending x; each trial is one index, each group one series
  var order = [];
  for (var i = 0; i < n; i++) { order.push(i); }
  order.sort(function (a, b) { return d.x[a] - d.x[b]; });
  var GROUPS = [
    {label: "Pareto front (complete trials)", stroke: "#111", fill: "#111", size: 8, line: true,
     has: function (t) { return d.on_front[t]; }},
    {label: "complete", stroke: "#1f77b4", fill: "rgba(31,119,180,0.75)", size: 7,
     has: function (t) { return !d.on_front[t] && d.state[t] === "complete"; }},
    {label: "stopped early", stroke: "#e07b00", fill: "rgba(255,127,14,0.35)", size: 6,
     has: function (t) { return d.state[t] === "stopped"; }},
    {label: "running / failed", stroke: "#777", fill: "rgba(127,127,127,0.35)", size: 6,
     has: function (t) { return !d.on_front[t] && d.state[t] !== "complete" && d.state[t] !== "stopped"; }}
  ];
  var groupOf = order.map(function (t) {
    for (var g = 0; g < GROUPS.length; g++) { if (GROUPS[g].has(t)) { return g; } }
    return GROUPS.length - 1;
  });
  var xs = order.map(function (t) { return d.x[t]; });
  var data = [xs];
  GROUPS.forEach(function (grp, g) {
    data.push(order.map(function (t, k) { return groupOf[k] === g ? d.y[t] : null; }));
  });
  var kneeAt = order.findIndex(function (t) { return d.knee[t]; });
  data.push(order.map(function (t, k) { return k === kneeAt ? d.y[t] : null; }));

  function fmt(v) {
    if (typeof v !== "number") { return v === null || v === undefined ? "" : String(v); }
    if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) { return v.toExponential(3); }
    return String(Number(v.toPrecision(4)));
  }
  var energyUnit = d.energy_estimated ? "J, estimated" : "J";

  // A range around [lo, hi]: `share` of its span on each side, at least `least` (decades on a log axis, else a
  // share of the larger value), so that a front of one or two points still shows the trials near it
  function padded(lo, hi, log, share, least) {
    if (log) { lo = Math.log10(lo); hi = Math.log10(hi); }
    var pad = Math.max(share * (hi - lo), log ? least : least * Math.max(Math.abs(hi), Math.abs(lo)), 1e-9);
    lo -= pad; hi += pad;
    return log ? [Math.pow(10, lo), Math.pow(10, hi)] : [lo, hi];
  }
  function view(pick, share, least) {
    var px = [], py = [];
    for (var t = 0; t < n; t++) { if (pick(t)) { px.push(d.x[t]); py.push(d.y[t]); } }
    if (!px.length) { return null; }
    return {x: padded(Math.min.apply(null, px), Math.max.apply(null, px), d.log_energy, share, 0.1),
            y: padded(Math.min.apply(null, py), Math.max.apply(null, py), false, share, least)};
  }
  var ALL = view(function () { return true; }, 0.06, 0.02);
  var FRONT = view(function (t) { return d.on_front[t]; }, 0.25, 0.01) || ALL;

  var series = [{label: "energy"}];
  GROUPS.forEach(function (grp) {
    series.push({
      label: grp.label, stroke: grp.stroke, width: grp.line ? 1.5 : 0, fill: undefined, spanGaps: true,
      paths: grp.line ? uPlot.paths.stepped({align: 1}) : function () { return null; },
      points: {show: true, size: grp.size, stroke: grp.stroke, fill: grp.fill, width: 1}
    });
  });
  series.push({label: "knee", stroke: "#d62728", width: 0, paths: function () { return null; },
               points: {show: true, size: 18, stroke: "#d62728", fill: "rgba(0,0,0,0)", width: 2}});

  var status = document.createElement("p");
  status.className = "ws-status";
  var tip = document.createElement("div");
  tip.className = "ws-tip";
  tip.setAttribute("role", "tooltip");
  tip.style.display = "none";

  function inView(u, t) {
    var x = u.scales.x, y = u.scales.y;
    return d.x[t] >= x.min && d.x[t] <= x.max && d.y[t] >= y.min && d.y[t] <= y.max;
  }
  function shown(u, k) { return u.series[groupOf[k] + 1].show; }
  function updateStatus(u) {
    var total = 0, out = 0;
    for (var k = 0; k < n; k++) {
      if (!shown(u, k)) { continue; }
      total++;
      if (!inView(u, order[k])) { out++; }
    }
    var where = current === ALL ? (FRONT === ALL ? "All trials (no front yet: no trial has completed its budget)" :
      "All trials") : (current === FRONT ? "Zoomed to the Pareto front" : "Zoomed");
    status.textContent = where + ": " + (total - out) + " of " + total + " shown trials in view" +
      (out ? " (" + out + " outside: \u201cShow all trials\u201d or double-click to see them)." : ".");
  }

  function row(table, name, value) {
    var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
    th.textContent = name;
    td.textContent = value;
    tr.appendChild(th); tr.appendChild(td); table.appendChild(tr);
  }
  function showTip(u, k, left, top) {
    var t = order[k];
    tip.textContent = "";
    var head = document.createElement("div");
    head.className = "ws-tip-head";
    head.textContent = "trial " + d.trial_id[t] + " \u00b7 " + d.state[t] + (d.on_front[t] ? " \u00b7 on the front" : "") +
      (d.knee[t] ? " \u00b7 knee" : "") +
      (d.exported && d.exported[t] ? " \u00b7 exported (" + d.exported[t] + ")" : "");
    tip.appendChild(head);
    var table = document.createElement("table");
    row(table, d.accuracy, fmt(d.y[t]));
    row(table, "energy_j", fmt(d.x[t]) + " " + energyUnit);
    if (d.epochs_run[t] !== null) { row(table, "epochs", fmt(d.epochs_run[t]) + " of " + fmt(d.budget_epochs[t])); }
    d.figures.forEach(function (name, f) {
      if (d.figure_values[f][t] !== null) { row(table, name, fmt(d.figure_values[f][t])); }
    });
    d.keys.forEach(function (name, c) { row(table, name, fmt(d.config[c][t])); });
    tip.appendChild(table);
    tip.style.display = "block";
    var w = u.over.clientWidth;
    tip.style.left = (left + 14 + tip.offsetWidth > w ? Math.max(0, left - 14 - tip.offsetWidth) : left + 14) + "px";
    tip.style.top = Math.max(0, Math.min(top - 10, u.over.clientHeight - tip.offsetHeight)) + "px";
    tip.setAttribute("data-trial", d.trial_id[t]);
  }
  function onCursor(u) {
    var left = u.cursor.left, top = u.cursor.top, best = -1, bestD = HOVER_PX * HOVER_PX;
    if (left === undefined || left < 0) { tip.style.display = "none"; return; }
    for (var k = 0; k < n; k++) {
      if (!shown(u, k)) { continue; }
      var dx = u.valToPos(xs[k], "x") - left, dy = u.valToPos(d.y[order[k]], "y") - top;
      if (dx * dx + dy * dy <= bestD) { bestD = dx * dx + dy * dy; best = k; }
    }
    if (best < 0) { tip.style.display = "none"; tip.removeAttribute("data-trial"); return; }
    showTip(u, best, left, top);
  }

  var current = FRONT, kept = {x: FRONT.x, y: FRONT.y};
  // The range as set (uPlot would widen a log scale to whole decades, and every zoom with it); when uPlot asks
  // for a range from the data (it does when a legend entry toggles a series), the view the reader had stays.
  function keepRange(u, lo, hi, key) {
    return lo !== null && hi !== null && isFinite(lo) && isFinite(hi) && lo < hi ? [lo, hi] : kept[key];
  }
  var opts = {
    width: Math.max(320, root.clientWidth || 900), height: HEIGHT,
    title: d.accuracy + " against energy, every trial (interactive)",
    scales: {
      x: {time: false, auto: false, distr: d.log_energy ? 3 : 1, log: 10, range: keepRange},
      y: {auto: false, range: keepRange}
    },
    axes: [
      {label: "Energy per trial (" + energyUnit + ")", values: function (u, vals) { return vals.map(fmt); }},
      {label: d.accuracy, values: function (u, vals) { return vals.map(fmt); }, size: 60}
    ],
    legend: {live: false},
    cursor: {
      drag: {x: true, y: true, uni: 20, setScale: true},
      points: {show: false},
      // why: uPlot's double-click resets to the data's auto range; here it means "show all trials"
      bind: {dblclick: function () { return null; }}
    },
    series: series,
    hooks: {
      setCursor: [onCursor],
      setScale: [function (u, key) {
        kept[key] = [u.scales[key].min, u.scales[key].max];
        if (key === "y") { updateStatus(u); }
      }],
      setSeries: [function (u) { updateStatus(u); onCursor(u); }],
      // a drag-to-zoom sets the scales itself: the view is then neither of the named ones
      setSelect: [function (u) { if (u.select.width > 0) { current = null; } }]
    }
  };
  var u = new uPlot(opts, data, root);
  u.over.appendChild(tip);
  root.appendChild(status);

  function setView(v, name) {
    current = name === undefined ? v : name;
    u.batch(function () {
      u.setScale("x", {min: v.x[0], max: v.x[1]});
      u.setScale("y", {min: v.y[0], max: v.y[1]});
    });
    updateStatus(u);
  }
  var bar = document.createElement("div");
  bar.className = "ws-bar";
  [["Zoom to the front", function () { setView(FRONT); }], ["Show all trials", function () { setView(ALL); }]]
    .forEach(function (b) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = b[0];
      button.addEventListener("click", b[1]);
      bar.appendChild(button);
    });
  root.insertBefore(bar, root.firstChild);
  u.over.addEventListener("dblclick", function () { setView(ALL); });

  // Wheel: zoom both axes around the pointer (log-aware on a log energy axis)
  function scaled(key, lo, hi, at, f, log) {
    if (log) { lo = Math.log10(lo); hi = Math.log10(hi); at = Math.log10(at); }
    lo = at - (at - lo) * f; hi = at + (hi - at) * f;
    return log ? [Math.pow(10, lo), Math.pow(10, hi)] : [lo, hi];
  }
  u.over.addEventListener("wheel", function (e) {
    e.preventDefault();
    var rect = u.over.getBoundingClientRect(), f = e.deltaY < 0 ? 0.8 : 1.25;
    var ax = u.posToVal(e.clientX - rect.left, "x"), ay = u.posToVal(e.clientY - rect.top, "y");
    setView({x: scaled("x", u.scales.x.min, u.scales.x.max, ax, f, d.log_energy),
             y: scaled("y", u.scales.y.min, u.scales.y.max, ay, f, false)}, null);
  }, {passive: false});

  // Shift+drag: pan. Captured on the chart's root so that uPlot's own drag-to-zoom does not start.
  var pan = null;
  function shift(lo, hi, frac, log) {
    if (log) { lo = Math.log10(lo); hi = Math.log10(hi); }
    var delta = frac * (hi - lo);
    return log ? [Math.pow(10, lo - delta), Math.pow(10, hi - delta)] : [lo - delta, hi - delta];
  }
  u.root.addEventListener("mousedown", function (e) {
    if (!e.shiftKey || !u.over.contains(e.target)) { return; }
    e.stopPropagation();
    e.preventDefault();
    pan = {x: e.clientX, y: e.clientY, sx: [u.scales.x.min, u.scales.x.max], sy: [u.scales.y.min, u.scales.y.max]};
  }, true);
  document.addEventListener("mousemove", function (e) {
    if (!pan) { return; }
    var fx = (e.clientX - pan.x) / u.over.clientWidth, fy = -(e.clientY - pan.y) / u.over.clientHeight;
    setView({x: shift(pan.sx[0], pan.sx[1], fx, d.log_energy), y: shift(pan.sy[0], pan.sy[1], fy, false)}, null);
  });
  document.addEventListener("mouseup", function () { pan = null; });
  window.addEventListener("resize", function () {
    u.setSize({width: Math.max(320, root.clientWidth || 900), height: HEIGHT});
  });

  setView(FRONT);
  // why global: a handle for the browser test and for anyone exploring in devtools (uPlot's public API)
  window.wattsweepExplore = {plot: u, data: d, order: order, views: {front: FRONT, all: ALL}, setView: setView};
})();
