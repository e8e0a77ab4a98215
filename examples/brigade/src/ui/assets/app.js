// Brigade's web UI: polls the REST API for processors and readiness, and adds, edits,
// stops, starts and removes processors through it. No build step, no dependencies. Served by
// a standby, the same calls reach the leader through the standby's proxy (same origin).
"use strict";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
let editing = null; // the name being edited, or "" when adding

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) { init.headers["content-type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
  // A standby proxies the API to the leader and names it.
  return { ok: response.ok, status: response.status, data, leader: response.headers.get("x-brigade-leader") };
}

function setPill(id, ok, text) {
  const p = $(id);
  p.dataset.ok = String(ok);
  p.textContent = text;
}

function counter(name, value) {
  return el("div", {}, el("dt", {}, name), el("dd", { "data-counter": name }, value ?? 0));
}

// Seconds as a person reads them: "850 ms", "2.4 s"; "–" before any task finished.
function duration(seconds) {
  if (typeof seconds !== "number") return "–";
  return seconds < 1 ? Math.round(seconds * 1000) + " ms" : seconds.toFixed(seconds < 10 ? 2 : 1) + " s";
}

function card(p) {
  const c = p.counters || {};
  const cfg = p.config || {};
  const lat = p.latency || {};
  const runs = cfg.command ? "command: " + cfg.command : cfg.docker ? "docker: " + cfg.docker : "";
  const buttons = el("div", { class: "row" });
  if (p.config) buttons.append(el("button", { type: "button", onclick: () => openEditor(p) }, "Edit"));
  if (p.state !== "invalid") {
    if (p.stopped) buttons.append(el("button", { type: "button", onclick: () => act(p.name, "start") }, "Start"));
    else buttons.append(el("button", { type: "button", onclick: () => act(p.name, "stop") }, "Stop"));
  }
  buttons.append(el("button", { type: "button", class: "danger", onclick: () => removeProcessor(p.name) }, "Remove"));
  const node = el("article", { class: "card", "data-name": p.name },
    el("header", {}, el("h3", {}, p.name), el("span", { class: "state " + p.state, "data-state": p.state }, p.state)),
    el("p", { class: "meta" }, (cfg.input ? cfg.input + " → " + (cfg.output || "∅") + " / " + cfg.error : p.origin)),
    runs ? el("p", { class: "meta" }, runs) : "",
    el("dl", { class: "counters" },
      counter("consumed", c.consumed), counter("produced", c.produced), counter("failed", c.failed),
      counter("in flight", c.in_flight), counter("retries", c.retries), counter("duplicated", c.duplicated),
      counter("latency p50", duration(lat.p50_seconds)), counter("latency p99", duration(lat.p99_seconds))),
    p.unplaced ? el("p", { class: "warning", role: "status", "data-unplaced": "" }, "Not placed: " + p.unplaced) : "",
    p.framework_id ? el("p", { class: "meta" }, "framework " + p.framework_id) : "",
  );
  const problems = (p.validation_errors || []).map((e) => (e.field ? e.field + ": " : "") + e.message);
  const recent = (p.recent_errors || []).slice(-5).reverse().map((e) => (e.source ? e.source + " " : "") + e.message);
  const lines = problems.concat(recent);
  if (lines.length) node.append(el("ul", { class: "errors" }, ...lines.map((l) => el("li", {}, l))));
  node.append(buttons);
  return node;
}

async function refresh() {
  try {
    const [list, ready] = await Promise.all([api("GET", "/api/processors"), api("GET", "/ready")]);
    setPill("conn", list.ok, list.ok ? "connected" : "API error " + list.status);
    if (ready.data) {
      const via = list.leader ? " via leader " + list.leader : "";
      setPill("leader", ready.data.leader || !!list.leader, ready.data.leader ? "leader" : "standby" + via);
      setPill("mesos", ready.data.mesos, ready.data.mesos ? "Mesos up" : "Mesos down");
      setPill("kafka", ready.data.kafka, ready.data.kafka ? "Kafka up" : "Kafka down");
      const reasons = ready.data.reasons || [];
      $("reasons").hidden = reasons.length === 0;
      $("reasons").textContent = reasons.join("; ");
    }
    if (list.ok && Array.isArray(list.data)) {
      $("processors").replaceChildren(...list.data.map(card));
      $("empty").hidden = list.data.length > 0;
    }
  } catch (_) {
    setPill("conn", false, "disconnected");
  }
}

function clearErrors() {
  for (const e of document.querySelectorAll("#form .err")) e.textContent = "";
  for (const i of document.querySelectorAll("#form [aria-invalid]")) i.removeAttribute("aria-invalid");
}

function openEditor(p) {
  const form = $("form");
  form.reset();
  clearErrors();
  editing = p ? p.name : "";
  $("editor-title").textContent = p ? "Edit " + p.name : "Add processor";
  form.elements.name.readOnly = !!p;
  if (p && p.config) {
    const c = p.config;
    for (const k of ["name", "input", "output", "error", "cpus", "mem", "max_in_flight", "timeout", "retries"]) {
      if (c[k] !== undefined) form.elements[k].value = c[k];
    }
    form.elements.kind.value = c.docker ? "docker" : "command";
    form.elements.runner.value = c.docker || c.command || "";
    form.elements.env.value = (c.env || []).join("\n");
  }
  $("editor").hidden = false;
  document.querySelector("main").classList.add("editing");
  form.elements[p ? "input" : "name"].focus();
}

function closeEditor() {
  $("editor").hidden = true;
  document.querySelector("main").classList.remove("editing");
  editing = null;
}

function documentFromForm(form) {
  const doc = {};
  const text = (k) => form.elements[k].value.trim();
  for (const k of ["name", "input", "output", "error"]) if (text(k)) doc[k] = text(k);
  doc[form.elements.kind.value] = text("runner");
  for (const k of ["cpus", "mem", "max_in_flight", "timeout", "retries"]) {
    const v = text(k);
    if (v !== "") doc[k] = isNaN(Number(v)) ? v : Number(v);
  }
  const env = form.elements.env.value.split("\n").map((l) => l.trim()).filter(Boolean);
  if (env.length) doc.env = env;
  return doc;
}

function showErrors(data) {
  const general = [];
  for (const e of (data && data.errors) || []) {
    const slot = document.querySelector('#form .err[data-for="' + CSS.escape(e.field.split(/[.[]/)[0]) + '"]');
    if (slot) {
      slot.textContent = (slot.textContent ? slot.textContent + "; " : "") + e.message;
      const input = slot.parentElement.querySelector("input, textarea");
      if (input) input.setAttribute("aria-invalid", "true");
    } else {
      general.push((e.field ? e.field + ": " : "") + e.message);
    }
  }
  if (!(data && data.errors && data.errors.length)) general.push((data && data.error) || "failed");
  $("form-error").textContent = general.join("; ");
}

async function save(event) {
  event.preventDefault();
  clearErrors();
  const form = $("form");
  const doc = documentFromForm(form);
  // Validate first: the form shows every problem next to its field, and a bad processor
  // never reaches the write (whose 400 the browser would log as a failed request).
  const check = await api("POST", "/api/validate", editing ? Object.assign({ name: editing }, doc) : doc);
  if (check.ok && check.data && !check.data.valid) {
    showErrors({ errors: check.data.errors });
    return;
  }
  const result = editing
    ? await api("PUT", "/api/processors/" + encodeURIComponent(editing), doc)
    : await api("POST", "/api/processors", doc);
  if (result.ok) {
    closeEditor();
    refresh();
  } else {
    showErrors(result.data);
  }
}

async function act(name, what) {
  await api("POST", "/api/processors/" + encodeURIComponent(name) + "/" + what);
  refresh();
}

async function removeProcessor(name) {
  if (!window.confirm("Remove " + name + "? It drains and stops.")) return;
  await api("DELETE", "/api/processors/" + encodeURIComponent(name));
  refresh();
}

$("new").addEventListener("click", () => openEditor(null));
$("cancel").addEventListener("click", closeEditor);
$("form").addEventListener("submit", save);
refresh();
setInterval(refresh, POLL_MS);
