// rig view, shared pieces: building elements (text always as text nodes), formatting, loading episode chunks
// (ep/<episode>/<chunk>.js calls RIG.chunk(...)), and frames drawn from a chunk's sprite.
(function () {
  "use strict";
  const CELL = 64; // sprite cell in pixels
  const chunks = {}, pending = {}, waiters = {};

  // -- building the page -------------------------------------------------------------------------
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = String(v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const pct = (x) => (x === null || x === undefined ? "-" : (100 * x).toFixed(1) + " %");
  const pct0 = (x) => (100 * x).toFixed(0);
  const num = (x, d) => (x === null || x === undefined ? "-" : Number(x).toFixed(d === undefined ? 2 : d));
  const clear = (el) => { while (el.firstChild) el.removeChild(el.firstChild); };
  const endClass = (e) => (e === "success" ? "ok" : "bad");
  const endText = {success: "success", died: "died", timeout: "out of steps"};

  function facts(rows) {
    return h("table", {class: "facts"}, rows.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))));
  }

  function rateCell(r) {
    if (!r) return h("td", {class: "num muted"}, "-");
    const bar = h("span", {class: "bar"});
    const fill = h("span", {class: "fill"});
    fill.style.width = pct0(r.rate) + "%";
    const ci = h("span", {class: "ci"});
    ci.style.left = pct0(r.ci95[0]) + "%";
    ci.style.width = Math.max(1, pct0(r.ci95[1]) - pct0(r.ci95[0])) + "%";
    bar.append(fill, ci);
    return h("td", {class: "num", title: r.successes + " of " + r.episodes + " episodes"},
      pct0(r.rate) + " % [" + pct0(r.ci95[0]) + ", " + pct0(r.ci95[1]) + "]", bar);
  }

  // -- loading episode chunks ---------------------------------------------------------------------
  window.RIG = {
    chunk(ep, c, data) {
      const key = ep + "/" + c;
      chunks[key] = data;
      if (waiters[key]) waiters[key](data);
    },
  };

  function loadChunk(ep, c) {
    const key = ep + "/" + c;
    if (chunks[key]) return Promise.resolve(chunks[key]);
    if (!pending[key]) {
      pending[key] = new Promise((resolve, reject) => {
        waiters[key] = resolve;
        const s = document.createElement("script");
        s.src = "ep/" + ep + "/" + c + ".js";
        s.onerror = () => { delete pending[key]; reject(new Error("cannot load " + s.src)); };
        document.head.append(s);
      });
    }
    return pending[key];
  }

  // -- frames: one cell of a chunk's sprite, drawn at a scale ---------------------------------------
  function frameBox(scale, title) {
    const img = h("img", {alt: title || "frame", class: "sprite"});
    const box = h("div", {class: "frame"}, img);
    box.style.width = box.style.height = CELL * scale + "px";
    return {box, img, scale};
  }

  function setFrame(fb, ep, c, idx, cols) {
    if (idx === null || idx === undefined) {
      fb.box.classList.add("empty");
      fb.img.hidden = true;
      return;
    }
    fb.box.classList.remove("empty");
    fb.img.hidden = false;
    const src = "ep/" + ep + "/" + c + ".webp";
    if (fb.img.getAttribute("src") !== src) fb.img.setAttribute("src", src);
    fb.img.style.width = cols * CELL * fb.scale + "px";
    fb.img.style.left = -(idx % cols) * CELL * fb.scale + "px";
    fb.img.style.top = -Math.floor(idx / cols) * CELL * fb.scale + "px";
  }

  function figure(fb, caption) {
    return h("figure", {}, fb.box, h("figcaption", {}, caption));
  }

  window.RIGLIB = {h, pct, pct0, num, clear, endClass, endText, facts, rateCell, loadChunk, frameBox, setFrame, figure};
})();
