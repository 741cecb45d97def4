"""The page :mod:`pcseg.viz.html` fills in: ``%TITLE%``, ``%POINT_SIZE%``, ``%DATA%``, ``%PLOTLY%``.

The script decodes the base64 arrays, colours points by mode in the browser and draws one
plotly ``scatter3d`` trace. ``document.body.dataset.status`` becomes ``ready`` once the plot is
drawn; script errors, rejected promises and ``console.error`` calls are collected in
``window.pcsegErrors`` and mirrored into the ``data-errors`` attribute of ``<html>`` (what the
browser test reads back from the DOM).
"""

PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%TITLE%</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
html,body{margin:0;height:100%;font-family:system-ui,sans-serif;font-size:13px;color:#222}
body{display:flex}
#plot{flex:1;min-width:0;height:100%}
#side{width:240px;flex:none;padding:10px 12px;overflow-y:auto;border-left:1px solid #ddd;box-sizing:border-box}
h1{font-size:15px;margin:0 0 4px}
#summary{margin-bottom:8px;color:#444}
#modes{margin-bottom:10px}
#modes button{margin:0 4px 4px 0;padding:3px 8px;border:1px solid #999;background:#f4f4f4;border-radius:3px;cursor:pointer}
#modes button.on{background:#333;color:#fff;border-color:#333}
.heading{font-weight:600;margin:6px 0 3px}
.row{display:flex;align-items:center;gap:6px;margin:2px 0;white-space:nowrap}
.sw{width:12px;height:12px;border:1px solid #777;flex:none}
.val{margin-left:auto;font-variant-numeric:tabular-nums;color:#333}
</style>
<script>
window.pcsegErrors = [];
function pcsegError(message) {
  window.pcsegErrors.push(String(message));
  document.documentElement.setAttribute("data-errors", JSON.stringify(window.pcsegErrors));
}
window.addEventListener("error", function (e) { pcsegError(e.message); });
window.addEventListener("unhandledrejection", function (e) { pcsegError(e.reason); });
(function () {
  var original = console.error;
  console.error = function () {
    pcsegError(Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
</script>
<script>%PLOTLY%</script>
</head>
<body data-status="loading">
<div id="plot"></div>
<div id="side"><h1>%TITLE%</h1><div id="summary"></div><div id="modes"></div><div id="legend"></div></div>
<script id="pcseg-data" type="application/json">%DATA%</script>
<script>
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("pcseg-data").textContent);
  var POINT_SIZE = %POINT_SIZE%;
  function decode(b64, Type) {
    var s = atob(b64), bytes = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  var n = D.n, xyz = decode(D.xyz, Float32Array);
  var x = new Float32Array(n), y = new Float32Array(n), z = new Float32Array(n);
  for (var i = 0; i < n; i++) { x[i] = xyz[3 * i]; y[i] = xyz[3 * i + 1]; z[i] = xyz[3 * i + 2]; }
  var IdType = D.id_bytes === 1 ? Uint8Array : Uint16Array;
  var gt = D.gt ? decode(D.gt, IdType) : null, pred = D.pred ? decode(D.pred, IdType) : null;
  var ignore = {}; D.ignore.forEach(function (c) { ignore[c] = true; });
  function rgb(c) { return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"; }
  var classRgb = D.colors.map(rgb), errorRgb = D.error_colors.map(rgb);

  var text = new Array(n);
  for (var i = 0; i < n; i++) {
    var parts = [];
    if (gt) parts.push("truth: " + D.names[gt[i]]);
    if (pred) parts.push("prediction: " + D.names[pred[i]]);
    text[i] = parts.length ? parts.join("<br>") : "point " + i;
  }
  function counts(ids) {
    var c = new Array(D.names.length).fill(0);
    if (ids) for (var i = 0; i < n; i++) c[ids[i]]++;
    return c;
  }
  var gtCounts = counts(gt), predCounts = counts(pred);

  var modes = [];
  if (gt) modes.push(["gt", "ground truth"]);
  if (pred) modes.push(["pred", "prediction"]);
  if (gt && pred) modes.push(["errors", "errors"]);
  if (!modes.length) modes.push(["height", "height"]);
  var wanted = (location.hash.match(/mode=(\w+)/) || [])[1];  // page.html#mode=errors opens in that mode
  modes.sort(function (a, b) { return (b[0] === wanted) - (a[0] === wanted); });

  function colours(mode) {
    if (mode === "height") return { color: z, colorscale: "Viridis" };
    var out = new Array(n);
    if (mode === "errors") {
      for (var i = 0; i < n; i++) out[i] = ignore[gt[i]] ? errorRgb[2] : (gt[i] === pred[i] ? errorRgb[0] : errorRgb[1]);
    } else {
      var ids = mode === "gt" ? gt : pred;
      for (var j = 0; j < n; j++) out[j] = classRgb[ids[j]];
    }
    return { color: out };
  }
  function row(colour, name, value) {
    return '<div class="row"><span class="sw" style="background:' + colour + '"></span><span>' + name +
      '</span><span class="val">' + value + "</span></div>";
  }
  function legend(mode) {
    var out = "";
    if (mode === "errors") {
      var right = 0, wrong = 0, skipped = 0;
      for (var i = 0; i < n; i++) { if (ignore[gt[i]]) skipped++; else if (gt[i] === pred[i]) right++; else wrong++; }
      out += '<div class="heading">errors</div>';
      out += row(errorRgb[0], "correct", right.toLocaleString());
      out += row(errorRgb[1], "wrong", wrong.toLocaleString());
      out += row(errorRgb[2], "not scored", skipped.toLocaleString());
    } else if (mode === "height") {
      out += '<div class="heading">height (z, metres)</div>';
    } else {
      out += '<div class="heading">classes' + (D.iou ? " (IoU %)" : " (points)") + "</div>";
      for (var c = 0; c < D.names.length; c++) {
        if (!gtCounts[c] && !predCounts[c]) continue;
        var value = D.iou ? (D.iou[c] === null ? "-" : (100 * D.iou[c]).toFixed(1))
                          : (mode === "gt" ? gtCounts[c] : predCounts[c]).toLocaleString();
        if (ignore[c]) value = "ignored";
        out += row(classRgb[c], D.names[c], value);
      }
    }
    document.getElementById("legend").innerHTML = out;
  }
  document.getElementById("summary").innerHTML = n.toLocaleString() + " points" +
    (D.miou === null ? "" : "<br><b>mIoU " + (100 * D.miou).toFixed(1) + " %</b>");

  var trace = {
    type: "scatter3d", mode: "markers", x: x, y: y, z: z, text: text,
    hovertemplate: "%{text}<br>x %{x:.2f} m<br>y %{y:.2f} m<br>z %{z:.2f} m<extra></extra>",
    marker: Object.assign({ size: POINT_SIZE }, colours(modes[0][0]))
  };
  var axis = { visible: false };
  var layout = {
    margin: { l: 0, r: 0, t: 0, b: 0 }, showlegend: false, paper_bgcolor: "white",
    scene: { aspectmode: "data", xaxis: axis, yaxis: axis, zaxis: axis,
             camera: { eye: { x: -0.9, y: -0.9, z: 0.7 } } }
  };
  var buttons = document.getElementById("modes");
  modes.forEach(function (m, k) {
    var b = document.createElement("button");
    b.textContent = m[1]; b.dataset.mode = m[0];
    if (k === 0) b.className = "on";
    b.onclick = function () {
      Array.prototype.forEach.call(buttons.children, function (o) { o.className = ""; });
      b.className = "on";
      var c = colours(m[0]);
      Plotly.restyle("plot", { "marker.color": [c.color], "marker.colorscale": [c.colorscale || null] });
      legend(m[0]);
    };
    buttons.appendChild(b);
  });
  legend(modes[0][0]);
  Plotly.newPlot("plot", [trace], layout, { responsive: true, displaylogo: false }).then(function () {
    document.body.dataset.status = "ready";
  });
})();
</script>
</body></html>
"""
