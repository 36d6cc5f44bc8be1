// bioner's page. Everything the user or the model wrote is put into the page as text nodes
// (textContent / createTextNode), never as HTML, so a text holding <script> shows as text.
"use strict";

const PALETTE = ["#ffd166", "#8ecae6", "#b5e48c", "#f4a7b9", "#cdb4db", "#ffb703", "#90e0ef", "#e9c46a"];
const state = { models: [], results: [], colours: {} };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "style") Object.assign(node.style, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function headers(json = true) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const key = $("api-key").value;
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function call(path, options) {
  const resp = await fetch(path, options);
  if (resp.status === 401) $("key-box").hidden = false;
  if (!resp.ok) {
    let message = resp.status + " " + resp.statusText;
    try { message = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return resp;
}

function colour(label) {
  if (!(label in state.colours)) state.colours[label] = PALETTE[Object.keys(state.colours).length % PALETTE.length];
  return state.colours[label];
}

function fmt(x) { return x === null || x === undefined ? "–" : Number(x).toFixed(3); }

function renderCard(model) {
  const card = $("card");
  card.replaceChildren();
  if (!model) return;
  card.append(el("h2", { text: model.name }));
  card.append(el("p", {}, "kind: ", el("b", { text: model.kind }), " · backend: " + model.backend +
    " · " + model.precision + " · " + model.parameters.toLocaleString() + " parameters"));
  card.append(el("p", { text: "entity types: " + model.entity_types.join(", ") }));
  if (model.test) {
    const o = model.test.overall;
    const table = el("table", {}, el("tr", {}, el("th", { text: "test" }), el("th", { text: "P" }),
      el("th", { text: "R" }), el("th", { text: "F1" })));
    for (const mode of ["strict", "partial"]) {
      table.append(el("tr", {}, el("td", { text: mode }), el("td", { text: fmt(o[mode].precision) }),
        el("td", { text: fmt(o[mode].recall) }), el("td", { text: fmt(o[mode].f1) })));
    }
    card.append(table);
    const byLen = el("table", {}, el("tr", {}, el("th", { text: "entity length" }), el("th", { text: "gold" }),
      el("th", { text: "strict F1" })));
    for (const [bucket, v] of Object.entries(model.test.by_length)) {
      byLen.append(el("tr", {}, el("td", { text: bucket + " tokens" }), el("td", { text: v.gold }),
        el("td", { text: fmt(v.strict_f1) })));
    }
    card.append(byLen);
  } else {
    card.append(el("p", { text: "no test metrics in the run folder" }));
  }
}

function renderResults() {
  const rendered = $("rendered");
  const tbody = $("spans").querySelector("tbody");
  rendered.replaceChildren();
  tbody.replaceChildren();
  const labels = new Set();
  for (const rec of state.results) {
    const div = el("div", { class: "doc", "data-doc": rec.id });
    let pos = 0;
    for (const s of [...rec.spans].sort((a, b) => a.start - b.start)) {
      if (s.start < pos) continue; // spans never overlap; guard anyway
      div.append(document.createTextNode(rec.text.slice(pos, s.start)));
      labels.add(s.label);
      const mark = el("mark", { class: "ent", "data-label": s.label, "data-start": s.start, "data-end": s.end,
        title: s.label + (s.score !== undefined && s.score !== null ? " · score " + fmt(s.score) : ""),
        style: { background: colour(s.label) } });
      mark.append(document.createTextNode(rec.text.slice(s.start, s.end)), el("span", { class: "lab", text: s.label }));
      div.append(mark);
      pos = s.end;
      tbody.append(el("tr", {}, el("td", { text: rec.id }), el("td", { text: s.start }), el("td", { text: s.end }),
        el("td", { text: s.label }), el("td", { text: s.text }), el("td", { text: fmt(s.score) })));
    }
    div.append(document.createTextNode(rec.text.slice(pos)));
    rendered.append(div);
  }
  const legend = $("legend");
  legend.replaceChildren(...[...labels].sort().map((l) => el("span", { text: l, style: { background: colour(l) } })));
  $("dl-jsonl").disabled = $("dl-bioc").disabled = state.results.length === 0;
}

function fileFormat(name) {
  const n = name.toLowerCase();
  if (n.endsWith(".pubtator")) return "pubtator";
  if (n.endsWith(".xml")) return "bioc-xml";
  if (n.endsWith(".jsonl")) return "jsonl";
  if (n.endsWith(".json")) return "bioc-json";
  return null; // plain text: tagged as one text
}

async function tagNow() {
  const status = $("status");
  status.className = "";
  status.textContent = "tagging…";
  const model = $("model").value || undefined;
  const file = $("file").files[0];
  try {
    const started = performance.now();
    if (file && fileFormat(file.name)) {
      const qs = new URLSearchParams({ format: fileFormat(file.name), output: "jsonl" });
      if (model) qs.set("model", model);
      const resp = await call("/v1/documents?" + qs, { method: "POST", headers: headers(false), body: await file.text() });
      state.results = (await resp.text()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
    } else {
      const text = file ? await file.text() : $("text").value;
      const resp = await call("/v1/tag", { method: "POST", headers: headers(), body: JSON.stringify({ text, model }) });
      state.results = (await resp.json()).results;
    }
    const n = state.results.reduce((k, r) => k + r.spans.length, 0);
    status.textContent = n + " entities in " + Math.round(performance.now() - started) + " ms";
    renderResults();
  } catch (err) {
    status.className = "error";
    status.textContent = err.message;
  }
}

function download(name, type, content) {
  const a = el("a", { href: URL.createObjectURL(new Blob([content], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

function biocXml(records) {
  const doc = document.implementation.createDocument(null, "collection", null);
  const root = doc.documentElement;
  const add = (parent, tag, text, attrs = {}) => {
    const node = doc.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    parent.append(node);
    return node;
  };
  add(root, "source", "bioner"); add(root, "date", new Date().toISOString().slice(0, 10)); add(root, "key", "");
  for (const r of records) {
    const d = add(root, "document");
    add(d, "id", r.id);
    const p = add(d, "passage");
    add(p, "offset", "0"); add(p, "text", r.text);
    r.spans.forEach((s, k) => {
      const a = add(p, "annotation", undefined, { id: "T" + (k + 1) });
      add(a, "infon", s.label, { key: "type" });
      if (s.score !== undefined && s.score !== null) add(a, "infon", fmt(s.score), { key: "score" });
      add(a, "location", undefined, { offset: s.start, length: s.end - s.start });
      add(a, "text", s.text);
    });
  }
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(doc);
}

async function init() {
  $("tag").addEventListener("click", tagNow);
  $("model").addEventListener("change", () => renderCard(state.models.find((m) => m.name === $("model").value)));
  $("dl-jsonl").addEventListener("click", () => download("bioner.jsonl", "application/x-ndjson",
    state.results.map((r) => JSON.stringify(r)).join("\n") + "\n"));
  $("dl-bioc").addEventListener("click", () => download("bioner.xml", "application/xml", biocXml(state.results)));
  const text = $("text");
  text.addEventListener("dragover", (e) => e.preventDefault());
  text.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) {
      const dt = new DataTransfer();
      dt.items.add(e.dataTransfer.files[0]);
      $("file").files = dt.files;
      $("status").textContent = "file: " + e.dataTransfer.files[0].name;
    }
  });
  $("api-key").addEventListener("change", loadModels);
  await loadModels();
}

async function loadModels() {
  try {
    const resp = await call("/v1/models", { headers: headers(false) });
    state.models = (await resp.json()).models;
    $("model").replaceChildren(...state.models.map((m) => el("option", { value: m.name, text: m.name + " (" + m.kind + ")" })));
    renderCard(state.models[0]);
    $("status").className = "";
    $("status").textContent = "";
  } catch (err) {
    $("status").className = "error";
    $("status").textContent = err.message;
  }
}

init();
