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
  function render(s) {
    var now = Date.parse(s.Time);
    set("node-id", s.ID);
    var ul = document.getElementById("addresses");
    ul.replaceChildren();
    (s.Addresses || []).forEach(function (a) { ul.append(el("li", "mono", a)); });
    if (!ul.children.length) ul.append(el("li", "empty", "not listening"));
    var peers = s.Peers || [], pins = s.Pins || [], tr = s.Transfers || [];
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
    rows("transfers", tr, "no transfers in progress", function (t) {
      var secs = Math.max((now - Date.parse(t.Started)) / 1000, 0.001);
      return [
        { node: link(t.Cid) },
        { node: prog(t.Bytes, t.Total) },
        { cls: "num", text: hb(t.Bytes) + (t.Total > 0 ? " / " + hb(t.Total) : "") },
        { cls: "num", text: String(t.Peers) },
        { cls: "num", text: hb(Math.round(t.Bytes / secs)) + "/s" }
      ];
    });
    rows("peers", peers, "no peers connected", function (p) {
      return [{ cls: "mono", text: p.ID }, { cls: "mono", text: p.Addr }];
    });
    rows("pins", pins, "nothing pinned", function (p) {
      return [{ node: link(p.Cid) }, { text: p.Mode }, { text: p.Name }];
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
