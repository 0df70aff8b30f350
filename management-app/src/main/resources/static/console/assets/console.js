// jvbus console: the device page's live per-queue charts (uPlot), fed by the page's server-sent events.
// Everything else in the console is server-rendered and works without this file.
(function () {
  "use strict";
  var KEPT = 120;  // points per chart: a minute at two a second
  var SERIES = [
    {key: "frames", label: "frames/s", scale: "rate", stroke: "#1f5fbf"},
    {key: "kicks", label: "kicks/s", scale: "rate", stroke: "#e07b00"},
    {key: "notified", label: "notifications sent/s", scale: "rate", stroke: "#1b7a3d"},
    {key: "suppressed", label: "notifications suppressed/s", scale: "rate", stroke: "#8a63d2"},
    {key: "bytes", label: "bytes/s", scale: "bytes", stroke: "#b3261e", dash: [6, 3]},
    {key: "fill", label: "ring fill %", scale: "fill", stroke: "#777", dash: [2, 3]}
  ];
  var state = window.jvbusConsole = {charts: {}, points: {}, samples: 0, gone: null};

  function fmt(v) {
    if (v == null) return "-";
    if (v >= 1e9) return (v / 1e9).toFixed(1) + " G";
    if (v >= 1e6) return (v / 1e6).toFixed(1) + " M";
    if (v >= 1e4) return (v / 1e3).toFixed(1) + " k";
    return v >= 100 ? v.toFixed(0) : v.toFixed(1);
  }

  function makeChart(el, name) {
    var data = [[]];
    SERIES.forEach(function () { data.push([]); });
    state.points[name] = data;
    if (typeof uPlot === "undefined") return null;
    var opts = {
      width: Math.max(280, el.clientWidth || 520), height: 240,
      scales: {x: {time: true}, fill: {range: [0, 100]}},
      legend: {live: false},   // the table under the chart has the latest values; a headless or touch screen has no cursor
      series: [{}].concat(SERIES.map(function (s) {
        return {label: s.label, scale: s.scale, stroke: s.stroke, width: 1.5, dash: s.dash, value: function (u, v) { return fmt(v); }};
      })),
      axes: [{}, {scale: "rate", label: "per second", values: function (u, vs) { return vs.map(fmt); }},
             {scale: "bytes", side: 1, label: "bytes/s", grid: {show: false}, values: function (u, vs) { return vs.map(fmt); }}]
    };
    var chart = new uPlot(opts, data, el);
    state.charts[name] = chart;
    return chart;
  }

  function follow(root) {
    var url = root.getAttribute("data-live");
    var charts = {};
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      charts[el.getAttribute("data-chart")] = makeChart(el, el.getAttribute("data-chart"));
    });
    var source = new EventSource(url);
    source.addEventListener("queues", function (ev) {
      var sample = JSON.parse(ev.data);
      state.samples++;
      sample.queues.forEach(function (q) {
        var data = state.points[q.name];
        if (!data) return;
        data[0].push(sample.at / 1000);
        SERIES.forEach(function (s, i) { data[i + 1].push(q[s.key]); });
        if (data[0].length > KEPT) data.forEach(function (a) { a.shift(); });
        if (charts[q.name]) charts[q.name].setData(data);
        SERIES.forEach(function (s) {
          var cell = root.querySelector('[data-rate="' + q.name + "." + s.key + '"]');
          if (cell) cell.textContent = fmt(q[s.key]);
        });
        ["buffers", "bytes", "kicks", "notificationsSent", "notificationsSuppressed"].forEach(function (k) {
          var cell = root.querySelector('[data-total="' + q.name + "." + k + '"]');
          var v = q.totals[k];
          if (cell) cell.textContent = (v < 1e4 ? String(v) + (k === "bytes" ? " " : "") : fmt(v)) + (k === "bytes" ? "B" : "");
        });
        var st = root.querySelector('[data-queue-state="' + q.name + '"]');
        if (st) st.textContent = q.running ? "running, size " + q.size : "not running";
      });
      var status = document.querySelector("[data-live-status]");
      if (status) status.textContent = "live, " + new Date(sample.at).toLocaleTimeString();
    });
    source.addEventListener("gone", function (ev) {
      state.gone = ev.data;
      var status = document.querySelector("[data-live-status]");
      if (status) status.textContent = ev.data;
      source.close();
    });
    window.addEventListener("resize", function () {
      Object.keys(charts).forEach(function (name) {
        var c = charts[name];
        if (c) c.setSize({width: Math.max(280, c.root.parentNode.clientWidth), height: 240});
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(follow);
  });
})();
