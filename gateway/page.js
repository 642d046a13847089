(function () {
  "use strict";
  var units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  function hb(n) {
    if (n < 1024) return n + " B";
    var v = n / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(1) + " " + units[i];
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function set(id, text) { document.getElementById(id).textContent = text; }
  function link(c) {
    var a = el("a", "mono", c);
    a.href = "/ipfs/" + encodeURIComponent(c) + "/";
    return a;
  }
  function prog(done, total) {
    var d = el("div", "prog"), p = el("progress");
    if (total > 0) {
      p.max = total;
      p.value = Math.min(done, total);
    }
    d.append(p, el("span", "pct", total > 0 ? (100 * done / total).toFixed(1) + "%" : "…"));
    return d;
  }
  function rows(id, items, empty, cells) {
    var tb = document.getElementById(id);
    var ncols = tb.parentNode.querySelectorAll("th").length;
    tb.replaceChildren();
    if (!items || !items.length) {
      var td = el("td", "empty", empty);
      td.colSpan = ncols;
      var tr = el("tr");
      tr.append(td);
      tb.append(tr);
      return;
    }
    items.forEach(function (it) {
      var tr = el("tr");
      cells(it).forEach(function (c) {
        var td = el("td", c.cls);
        if (c.node) td.append(c.node); else td.textContent = c.text;
        tr.append(td);
      });
      tb.append(tr);
    });
  }
  function rate(n) { return hb(n || 0) + "/s"; }
  // eta is how long the rest of a transfer takes at its current rate, as
  // the server's template writes it.
  function eta(done, total, r) {
    if (!(total > 0) || !(r > 0) || done >= total) return "–";
    var s = Math.ceil((total - done) / r);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (s >= 3600) return Math.floor(s / 3600) + "h " + two(Math.floor(s % 3600 / 60)) + "m";
    if (s >= 60) return Math.floor(s / 60) + "m " + two(s % 60) + "s";
    return s + "s";
  }
  function short(id) { return id.length <= 14 ? id : id.slice(0, 6) + "…" + id.slice(-6); }
  // from lists what each provider sent a transfer.
  function from(t) {
    var f = document.createDocumentFragment();
    f.append(String(t.Peers));
    (t.From || []).forEach(function (p) {
      var d = el("div", "from");
      d.append(el("span", "mono", short(p.Peer)), " " + hb(p.Bytes) + " · " + p.Protocol);
      f.append(d);
    });
    return f;
  }
  function addr(p) {
    var f = document.createDocumentFragment();
    f.append(p.Addr);
    if (p.Relayed) f.append(" ", el("span", "tag", "relayed"));
    return f;
  }
  // line is an SVG path through points (bytes per second, oldest first,
  // the last one now), one a second across the graph's 5 minutes.
  var gw = 600, gh = 160, span = 300;
  function line(pts, top) {
    var d = "", n = pts.length;
    for (var i = 0; i < n; i++) {
      var x = gw - (n - 1 - i) * gw / (span - 1), y = gh - 2 - (gh - 4) * pts[i] / top;
      d += (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
    }
    return d;
  }
  var graphs = 0;
  function graph(tr) {
    var ins = tr.In || [], outs = tr.Out || [];
    var top = Math.max(1024, Math.max.apply(null, ins.concat(outs, [0])));
    document.getElementById("graph-in").setAttribute("d", line(ins, top));
    document.getElementById("graph-out").setAttribute("d", line(outs, top));
    set("graph-max", rate(top));
    document.getElementById("graph").dataset.updates = String(++graphs);
  }
  function render(s) {
    set("node-id", s.ID);
    var ul = document.getElementById("addresses");
    ul.replaceChildren();
    (s.Addresses || []).forEach(function (a) { ul.append(el("li", "mono", a)); });
    if (!ul.children.length) ul.append(el("li", "empty", "not listening"));
    var peers = s.Peers || [], pins = s.Pins || [], tr = s.Transfers || [], tf = s.Traffic || {};
    set("peers-count", peers.length);
    set("peers-count2", peers.length);
    set("pins-count", pins.length);
    set("pins-count2", pins.length);
    set("transfers-count", tr.length);
    set("transfers-count2", tr.length);
    set("blocks", s.Blocks.toLocaleString("en-US"));
    set("storage-used", hb(s.StorageUsed));
    set("storage-max", s.StorageMax > 0 ? "of " + hb(s.StorageMax) + " (" + (100 * s.StorageUsed / s.StorageMax).toFixed(1) + "%)" : "no limit");
    var sp = document.getElementById("storage-bar");
    sp.max = s.StorageMax > 0 ? s.StorageMax : 1;
    sp.value = s.StorageMax > 0 ? Math.min(s.StorageUsed, s.StorageMax) : 0;
    sp.className = s.StorageMax > 0 && s.StorageUsed >= 0.9 * s.StorageMax ? "full" : "";
    set("rate-in", "↓ " + rate(tf.RateIn));
    set("rate-out", "↑ " + rate(tf.RateOut));
    set("traffic-totals", hb(tf.BytesIn || 0) + " in · " + hb(tf.BytesOut || 0) + " served");
    graph(tf);
    rows("transfers", tr, "no transfers in progress", function (t) {
      return [
        { node: link(t.Cid) },
        { node: prog(t.Bytes, t.Total) },
        { cls: "num", text: hb(t.Bytes) + (t.Total > 0 ? " / " + hb(t.Total) : "") },
        { cls: "num", text: rate(t.Rate) },
        { cls: "num", text: eta(t.Bytes, t.Total, t.Rate) },
        { node: from(t) }
      ];
    });
    rows("peers", peers, "no peers connected", function (p) {
      return [
        { cls: "mono", text: p.ID }, { cls: "mono", node: addr(p) }, { text: p.Protocol || "" },
        { cls: "num", text: rate(p.RateIn) }, { cls: "num", text: rate(p.RateOut) },
        { cls: "num", text: hb(p.BytesIn) + " · " + p.BlocksIn + " blocks" },
        { cls: "num", text: hb(p.BytesOut) + " · " + p.BlocksOut + " blocks" }
      ];
    });
    rows("pins", pins, "nothing pinned", function (p) {
      return [{ node: link(p.Cid) }, { text: p.Mode }, { text: p.Name }];
    });
    var fol = s.Following || [];
    set("following-count", fol.length);
    rows("following", fol, "no names followed (share follow, config Follow)", function (f) {
      var at = f.Updated && f.Updated.indexOf("0001-") !== 0 ? new Date(f.Updated).toLocaleString() : "–";
      return [
        { cls: "mono", text: short(f.Name) }, { cls: "mono", text: f.Dir },
        f.Cid ? { node: link(f.Cid) } : { text: "–" },
        { cls: "num", text: String(f.Sequence) }, { text: at }, { text: f.Err || "" }
      ];
    });
  }
  var updates = 0;
  function poll() {
    fetch("/api/status.json", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) {
        render(s);
        document.body.dataset.updates = String(++updates);
        document.body.classList.remove("stale");
        set("live", "live · updated " + new Date().toLocaleTimeString());
      })
      .catch(function (e) {
        // On the console too, so that a script error is not taken for a
        // lost connection.
        console.error("share status: " + e);
        document.body.classList.add("stale");
        set("live", "connection lost, retrying…");
      })
      .finally(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
