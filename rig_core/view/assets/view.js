// rig view: the page of a dataset, an evaluation or a pipeline, from the file system (no server).
// Data comes as <script> files: data/index.js sets window.RIG_VIEW, and each episode chunk
// ep/<episode>/<chunk>.js calls RIG.chunk(...) when a page needs it (lib.js). Every text from the data goes
// into the page through text nodes (textContent), never parsed as markup.
(function () {
  "use strict";
  const DATA = window.RIG_VIEW;
  const CHUNK = DATA.chunk; // steps per chunk
  const app = document.getElementById("app");
  const nav = document.getElementById("nav");
  const {h, pct, num, clear, endClass, endText, facts, rateCell, loadChunk, frameBox, setFrame, figure} = window.RIGLIB;
  let filters = {task: "", player: "", outcome: ""};
  let episodeView = null; // the episode page being shown

  // -- the summary page ---------------------------------------------------------------------------
  const playerNs = {}; // player -> the test-time settings it played
  for (const e of DATA.episodes) (playerNs[e.player] = playerNs[e.player] || new Set()).add(e.n);
  for (const c of DATA.success || []) (playerNs[c.player] = playerNs[c.player] || new Set()).add(c.n);
  function playerLabel(player, n) {
    return player + ((playerNs[player] && playerNs[player].size > 1) || n ? " N=" + n : "");
  }
  const label = (e) => playerLabel(e.player, e.n);

  function successTable() {
    const cols = DATA.success || [];
    if (!cols.length || !cols.some((c) => c.rows.length)) return null;
    const tasks = [...new Set(cols.flatMap((c) => c.rows.map((r) => r.task)))];
    const head = h("tr", {}, h("th", {}, "task"),
      cols.map((c) => h("th", {class: "num"}, c.player ? playerLabel(c.player, c.n) : "success")));
    const rows = tasks.map((t) => h("tr", {}, h("td", {}, t), cols.map((c) => rateCell(c.rows.find((r) => r.task === t)))));
    const extra = [];
    if (cols.some((c) => c.overall)) {
      extra.push(h("tr", {}, h("th", {}, "all tasks"), cols.map((c) => rateCell(c.overall))));
    }
    if (cols.some((c) => c.crafter_score !== null && c.crafter_score !== undefined)) {
      extra.push(h("tr", {}, h("td", {}, "Crafter score"), cols.map((c) => h("td", {class: "num"},
        c.crafter_score === null || c.crafter_score === undefined ? "-" : num(c.crafter_score) + " %"))));
    }
    if (cols.some((c) => c.expert_agreement !== null && c.expert_agreement !== undefined)) {
      extra.push(h("tr", {}, h("td", {}, "agrees with the expert"), cols.map((c) => h("td", {class: "num"}, pct(c.expert_agreement)))));
    }
    return h("table", {id: "success"}, h("thead", {}, head), h("tbody", {}, rows, extra));
  }

  function compareTable(cmp) {
    const sign = (x) => (x >= 0 ? "+" : "") + (100 * x).toFixed(1);
    const signed = (x) => (x >= 0 ? "+" : "") + x.toFixed(2);
    return h("table", {id: "compare"},
      h("tr", {}, ["player", "pairing", "episodes", "success", "baseline", "difference [95 %]", "McNemar p",
        "reward difference [95 %]", "achievements difference [95 %]"].map((x) => h("th", {}, x))),
      cmp.rows.map((r) => h("tr", {},
        h("td", {}, r.player), h("td", {}, r.paired ? "paired" : "unpaired: seeds differ"),
        h("td", {class: "num"}, r.episodes[1]), h("td", {class: "num"}, pct(r.success)),
        h("td", {class: "num"}, pct(r.baseline_success)),
        h("td", {class: "num"}, sign(r.success_diff) + " [" + sign(r.success_diff_ci95[0]) + ", " + sign(r.success_diff_ci95[1]) + "]"),
        h("td", {class: "num"}, r.mcnemar_p === null ? "-" : Number(r.mcnemar_p).toPrecision(3)),
        h("td", {class: "num"}, signed(r.reward_diff) + " [" + signed(r.reward_diff_ci95[0]) + ", " + signed(r.reward_diff_ci95[1]) + "]"),
        h("td", {class: "num"}, signed(r.achievements_diff) + " [" + signed(r.achievements_diff_ci95[0]) + ", " + signed(r.achievements_diff_ci95[1]) + "]"))));
  }

  function stagesTable() {
    return h("table", {id: "stages"},
      h("tr", {}, ["stage", "runs", "status", "wall time", "what", "view"].map((x) => h("th", {}, x))),
      DATA.stages.map((s) => h("tr", {},
        h("td", {}, s.stage), h("td", {}, s.run || ""), h("td", {}, s.status || ""),
        h("td", {class: "num"}, s.wall_s === null || s.wall_s === undefined ? "-" : Math.round(s.wall_s) + " s"),
        h("td", {}, s.what || ""),
        h("td", {}, s.view ? h("a", {href: s.view}, "open") : s.gif ? h("img", {src: s.gif, alt: s.stage, class: "gif"}) : ""))));
  }

  function select(name, values, current, texts) {
    const el = h("select", {id: "filter-" + name, onchange: () => { filters[name] = el.value; renderList(); saveFilters(); }},
      h("option", {value: ""}, "all"), values.map((v) => h("option", {value: v}, texts ? texts[v] : v)));
    el.value = current;
    return h("label", {}, name + " ", el);
  }

  function saveFilters() {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    history.replaceState(null, "", "#" + q.toString());
  }

  function matches(e) {
    if (filters.task && e.task !== filters.task) return false;
    if (filters.player && label(e) !== filters.player) return false;
    if (filters.outcome === "succeeded" && !e.success) return false;
    if (filters.outcome === "failed" && e.success) return false;
    if ((filters.outcome === "died" || filters.outcome === "timeout") && e.end !== filters.outcome) return false;
    return true;
  }

  let listBody = null, listCount = null;
  function renderList() {
    if (!listBody) return;
    clear(listBody);
    const shown = DATA.episodes.filter(matches);
    listCount.textContent = "showing " + shown.length + " of " + DATA.episodes.length + " episodes";
    const several = new Set(DATA.episodes.map(label)).size > 1;
    for (const e of shown) {
      listBody.append(h("tr", {class: "episode-row", "data-outcome": e.end, "data-success": e.success ? "1" : "0"},
        h("td", {class: "num"}, h("a", {href: "#ep=" + e.id}, e.index !== undefined ? e.index : e.id)),
        several ? h("td", {}, label(e)) : null,
        h("td", {}, e.task), h("td", {class: "num"}, e.seed === null || e.seed === undefined ? "" : e.seed),
        h("td", {class: endClass(e.end)}, endText[e.end] || e.end),
        h("td", {class: "num"}, e.steps), h("td", {class: "num"}, num(e.reward, 1)),
        h("td", {}, (e.unlocked || []).join(", ")),
        h("td", {class: "muted"}, e.recorded ? "" : "not recorded")));
    }
  }

  function episodesSection() {
    const eps = DATA.episodes;
    if (!eps.length) return null;
    const tasks = [...new Set(eps.map((e) => e.task))].sort();
    const players = [...new Set(eps.map(label))];
    const several = players.length > 1;
    listBody = h("tbody", {});
    listCount = h("span", {class: "muted"});
    const outcomes = {succeeded: "succeeded", failed: "failed (any)", died: "died", timeout: "out of steps"};
    const section = h("section", {},
      h("h2", {}, "Episodes"),
      h("div", {class: "filters"}, select("task", tasks, filters.task),
        several ? select("player", players, filters.player) : null,
        select("outcome", Object.keys(outcomes), filters.outcome, outcomes), listCount),
      h("table", {id: "episodes"},
        h("thead", {}, h("tr", {}, h("th", {class: "num"}, "episode"), several ? h("th", {}, "player") : null,
          h("th", {}, "task"), h("th", {class: "num"}, "seed"), h("th", {}, "outcome"), h("th", {class: "num"}, "steps"),
          h("th", {class: "num"}, "reward"), h("th", {}, "achievements"), h("th", {}, ""))),
        listBody));
    renderList();
    return section;
  }

  function showSummary(q) {
    episodeView = null;
    filters = {task: q.get("task") || "", player: q.get("player") || "", outcome: q.get("outcome") || ""};
    clear(app);
    document.title = DATA.title + " - rig view";
    app.append(h("h1", {}, DATA.title), facts(DATA.facts || []));
    if (DATA.kind === "pipeline") app.append(h("h2", {}, "Stages"), stagesTable());
    const st = successTable();
    if (st) app.append(h("h2", {}, "Success per task (95 % Wilson intervals)"), st);
    if (DATA.compare && DATA.compare.rows && DATA.compare.rows.length) {
      app.append(h("h2", {}, "Against " + DATA.compare.baseline), compareTable(DATA.compare));
    }
    if (DATA.plots && DATA.plots.length) {
      app.append(h("h2", {}, "Plots"), h("div", {class: "plots"}, DATA.plots.map((p) =>
        h("figure", {}, h("img", {src: p.src, alt: p.title}), h("figcaption", {}, p.title)))));
    }
    const eps = episodesSection();
    if (eps) app.append(eps);
  }

  // -- the episode page ---------------------------------------------------------------------------
  async function frameAt(ep, t) {
    // the real frame before step t (t = length: the last frame), as [chunk, cell, cols]
    const last = ep.chunks - 1;
    const c = t >= ep.steps ? last : Math.floor(t / CHUNK);
    const data = await loadChunk(ep.id, c);
    if (t >= ep.steps) return [c, data.final, data.cols];
    return [c, data.steps[t - data.start].f, data.cols];
  }

  function showEpisode(id, t) {
    const ep = DATA.episodes[id];
    clear(app);
    if (!ep) { app.append(h("p", {class: "bad"}, "no episode " + id), h("a", {href: "#"}, "all episodes")); return; }
    document.title = ep.task + " " + (ep.seed === undefined ? "" : ep.seed) + " - rig view";
    const back = h("a", {href: "#" + new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString(), id: "back"}, "< all episodes");
    const title = h("h1", {}, (ep.player ? label(ep) + " | " : "") + ep.task + (ep.seed === null || ep.seed === undefined ? "" : " | seed " + ep.seed) + " | ",
      h("span", {class: endClass(ep.end)}, (endText[ep.end] || ep.end) + " after " + ep.steps + " steps"));
    app.append(back, title);
    if (ep.instruction) app.append(h("p", {}, h("span", {class: "muted"}, "task: "), ep.instruction));
    if (!ep.recorded || !ep.chunks) {
      app.append(h("p", {class: "notice"}, "This episode's steps were not recorded (an evaluation written by an older rig evaluate). Re-run the evaluation to see it step by step."));
      return;
    }
    const v = {ep, t: 0, token: 0, timer: null};
    episodeView = v;
    v.slider = h("input", {type: "range", min: 0, max: ep.steps, value: 0, id: "slider", "aria-label": "step",
      oninput: () => go(Number(v.slider.value))});
    v.label = h("span", {class: "steplabel", id: "steplabel"});
    v.playBtn = h("button", {id: "play", onclick: () => togglePlay()}, "play");
    v.speed = h("select", {id: "speed", onchange: () => { if (v.timer) { stopPlay(); togglePlay(); } }},
      [1, 2, 4, 8, 16].map((s) => h("option", {value: s}, s + " steps/s")));
    v.speed.value = "4";
    app.append(h("div", {class: "controls"},
      h("button", {id: "first", onclick: () => go(0), title: "first step (Home)"}, "|<"),
      h("button", {id: "prev", onclick: () => go(v.t - 1), title: "previous step (left arrow)"}, "<"),
      v.playBtn,
      h("button", {id: "next", onclick: () => go(v.t + 1), title: "next step (right arrow)"}, ">"),
      h("button", {id: "last", onclick: () => go(ep.steps), title: "last frame (End)"}, ">|"),
      v.slider, v.label, v.speed, h("span", {class: "muted"}, "keys: left/right arrows, space, Home/End, Esc")));
    v.real = frameBox(4, "real frame");
    v.next = frameBox(3, "real next frame");
    v.imagined = h("div", {class: "frames", id: "imagined"});
    v.frames = h("div", {class: "frames"},
      figure(v.real, h("span", {id: "real-caption"}, "real frame")),
      figure(v.next, "real next frame"), v.imagined);
    v.info = h("table", {class: "info", id: "info"});
    v.extra = h("div", {id: "extra"});
    app.append(h("div", {class: "episode"}, v.frames, h("div", {}, v.info)), v.extra);
    go(Math.max(0, Math.min(ep.steps, t || 0)));
  }

  function row(name, ...value) {
    return h("tr", {}, h("td", {}, name), h("td", {}, value));
  }

  async function go(t) {
    const v = episodeView;
    if (!v) return;
    const ep = v.ep;
    t = Math.max(0, Math.min(ep.steps, t));
    const token = ++v.token;
    v.t = t;
    v.slider.value = t;
    v.label.textContent = "step " + t + " / " + ep.steps;
    history.replaceState(null, "", "#ep=" + ep.id + "&t=" + t);
    let cur, nxt, step = null, data = null;
    try {
      cur = await frameAt(ep, t);
      nxt = t < ep.steps ? await frameAt(ep, t + 1) : null;
      if (t < ep.steps) {
        data = await loadChunk(ep.id, Math.floor(t / CHUNK));
        step = data.steps[t - data.start];
      }
    } catch (err) {
      if (token === v.token) { clear(v.info); v.info.append(row("error", String(err.message || err))); }
      return;
    }
    if (token !== v.token) return; // a later step was asked for meanwhile
    const nextChunk = Math.floor(t / CHUNK) + 1; // prefetch the chunk ahead
    if (nextChunk < ep.chunks) loadChunk(ep.id, nextChunk).catch(() => {});
    setFrame(v.real, ep.id, cur[0], cur[1], cur[2]);
    if (nxt) setFrame(v.next, ep.id, nxt[0], nxt[1], nxt[2]); else setFrame(v.next, ep.id, 0, null, 1);
    document.getElementById("real-caption").textContent = t < ep.steps ? "real frame, step " + t : "last frame";
    renderStep(v, step, data, t);
  }

  function renderStep(v, step, data, t) {
    const ep = v.ep;
    clear(v.info);
    clear(v.imagined);
    clear(v.extra);
    if (!step) {
      v.info.append(row("end", h("span", {class: endClass(ep.end)}, endText[ep.end] || ep.end)),
        row("achievements", (ep.unlocked || []).join(", ") || "none"), row("reward", num(ep.reward, 1)));
      return;
    }
    const c = Math.floor(t / CHUNK);
    for (const im of step.imagined || []) {
      const fb = frameBox(3, im.label);
      setFrame(fb, ep.id, c, im.f, data.cols);
      v.imagined.append(figure(fb, im.label + (im.psnr === null || im.psnr === undefined ? "" : ", PSNR " + num(im.psnr, 1) + " dB")));
    }
    if (step.thought !== undefined) v.info.append(row("thought", h("div", {class: "thought", id: "thought"}, step.thought || "(none)")));
    const action = [h("b", {id: "action"}, step.action)];
    if (step.proposal && step.proposal.action && step.proposal.action !== step.action) {
      action.push(h("span", {class: "warn"}, "  corrected from " + step.proposal.action));
    }
    if (step.invalid) action.push(h("span", {class: "bad"}, "  (the model's output was cut off)"));
    if (step.expert !== undefined) {
      action.push(step.expert === step.action ? h("span", {class: "muted"}, "  (the expert agrees)")
        : h("span", {class: "muted"}, "  (the expert would: " + step.expert + ")"));
    }
    v.info.append(row("action", action));
    v.info.append(row("reward", num(step.reward, 1)));
    if (step.unlocked && step.unlocked.length) v.info.append(row("unlocked", h("span", {class: "ok"}, step.unlocked.join(", "))));
    if (step.inventory) {
      v.info.append(row("inventory", Object.entries(step.inventory).map(([k, n]) => h("span", {class: "tag"}, k + " " + n))));
    }
    if (step.proposal) v.extra.append(proposalPanel(step.proposal, ep, c, data.cols));
    if (step.candidates && step.candidates.length) v.extra.append(candidatesPanel(step.candidates));
  }

  function proposalPanel(p, ep, c, cols) {
    const review = p.source === "review data";
    const head = [h("b", {}, review ? "review data: " : "lookahead: "), "proposed ", h("b", {}, p.action || "-")];
    if (p.p_worse !== null && p.p_worse !== undefined) head.push(", P(correction) " + num(p.p_worse, 2));
    if (p.expert) head.push(", the expert's action " + p.expert);
    head.push(", taken " + p.taken);
    const rows = (p.chain || []).map((s, j) => {
      const im = frameBox(2, "imagined");
      setFrame(im, ep.id, c, s.f, cols);
      const real = frameBox(2, "real");
      setFrame(real, ep.id, c, s.real, cols);
      return h("tr", {},
        h("td", {class: "num"}, j + 1), h("td", {}, s.action), h("td", {class: "thought"}, s.thought || ""),
        h("td", {}, im.box), h("td", {}, s.real === null || s.real === undefined ? h("span", {class: "muted"}, review ? "not reached" : "the episode went another way") : real.box),
        h("td", {class: "num"}, s.psnr === null || s.psnr === undefined ? "-" : num(s.psnr, 1) + " dB"),
        review ? [h("td", {}, h("span", {class: "tag " + s.verdict}, s.verdict), " ", s.reason),
          h("td", {class: "thought"}, s.review), h("td", {}, s.corrected)] : null);
    });
    const cols_ = ["j", "action", "thought", "imagined", "real", "PSNR"].concat(review ? ["verdict and reason", "review", "corrected"] : []);
    const panel = h("div", {class: "panel", id: "proposal"}, h("div", {}, head),
      h("table", {class: "chain"}, h("tr", {}, cols_.map((x) => h("th", {}, x))), rows));
    if (!review && p.review) panel.append(h("div", {}, h("span", {class: "muted"}, "review: "), h("span", {class: "thought", id: "review"}, p.review)));
    return panel;
  }

  function candidatesPanel(cands) {
    return h("div", {class: "panel", id: "candidates"}, h("b", {}, "candidates"),
      h("table", {}, h("tr", {}, h("th", {}, "action"), h("th", {class: "num"}, "score"), h("th", {}, "thought")),
        cands.map((x) => h("tr", {}, h("td", {}, x.action), h("td", {class: "num"}, num(x.score, 3)), h("td", {class: "thought"}, x.thought || "")))));
  }

  function stopPlay() {
    if (episodeView && episodeView.timer) {
      clearInterval(episodeView.timer);
      episodeView.timer = null;
      episodeView.playBtn.textContent = "play";
    }
  }

  function togglePlay() {
    const v = episodeView;
    if (!v) return;
    if (v.timer) { stopPlay(); return; }
    if (v.t >= v.ep.steps) go(0);
    v.playBtn.textContent = "pause";
    v.timer = setInterval(() => {
      if (v.t >= v.ep.steps) stopPlay(); else go(v.t + 1);
    }, 1000 / Number(v.speed.value));
  }

  document.addEventListener("keydown", (ev) => {
    const v = episodeView;
    if (!v || ev.target.tagName === "SELECT" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const keys = {ArrowRight: () => go(v.t + 1), ArrowLeft: () => go(v.t - 1), Home: () => go(0),
      End: () => go(v.ep.steps), " ": () => togglePlay(), Escape: () => { location.hash = document.getElementById("back").getAttribute("href"); }};
    if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
  });

  // -- routing ------------------------------------------------------------------------------------
  function route() {
    stopPlay();
    const q = new URLSearchParams(location.hash.slice(1));
    if (q.has("ep")) showEpisode(Number(q.get("ep")), Number(q.get("t") || 0));
    else showSummary(q);
  }

  clear(nav);
  if (DATA.up) nav.append(h("a", {href: DATA.up.href}, "< " + DATA.up.title));
  nav.append(h("a", {href: "#"}, DATA.title), h("span", {class: "muted"}, "rig view"));
  window.addEventListener("hashchange", route);
  route();
})();
