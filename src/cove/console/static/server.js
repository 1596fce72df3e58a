// The server: its health, its sessions by status (every key's, counted), and the errors /metrics counts.
import { h } from "./dom.js";

const REFRESH_MS = 10_000;

// Prometheus' text format: [{name, labels, value}], comments left out.
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function table(caption, headings, rows, id) {
  return h(
    "table",
    { id },
    h("caption", { class: "muted" }, caption),
    h("thead", {}, h("tr", {}, headings.map((name, index) => h("th", { scope: "col", class: index ? "num" : "" }, name)))),
    h("tbody", {}, rows.length ? rows.map((cells) => h("tr", {}, cells.map((cell, index) => h("td", { class: index ? "num" : "" }, cell)))) : h("tr", {}, h("td", { colspan: headings.length, class: "muted" }, "none"))),
  );
}

export function serverView(main) {
  const health = h("p", { id: "server-health", role: "status" }, "…");
  const statuses = h("div", { class: "card" });
  const errors = h("div", { class: "card" });
  const tools = h("div", { class: "card" });
  async function load() {
    try {
      const answer = await fetch("/v1/health");
      const body = await answer.json();
      health.textContent = answer.ok && body.status === "ok" ? "The server is healthy." : `The server answered ${answer.status}.`;
    } catch (error) {
      health.textContent = `The server could not be reached: ${error.message}`;
    }
    try {
      const samples = parseMetrics(await (await fetch("/metrics")).text());
      const pick = (name) => samples.filter((sample) => sample.name === name);
      statuses.replaceChildren(
        h("h2", {}, "Sessions by status"),
        table("every key's sessions on this server", ["Status", "Sessions"], pick("cove_sessions").map((s) => [s.labels.status, s.value]), "sessions-by-status"),
      );
      errors.replaceChildren(
        h("h2", {}, "HTTP errors"),
        table("answers with an error status since the server started", ["Status", "Count"], pick("cove_http_errors_total").filter((s) => s.value).map((s) => [s.labels.status, s.value]), "http-errors"),
      );
      const failed = pick("cove_tool_calls_total").filter((s) => s.labels.outcome !== "ok" && s.value);
      tools.replaceChildren(
        h("h2", {}, "Tool calls that failed"),
        table("error: the tool failed; invalid: refused; failed: the server's fault", ["Tool / outcome", "Count"], failed.map((s) => [`${s.labels.tool} / ${s.labels.outcome}`, s.value]), "tool-failures"),
      );
    } catch (error) {
      statuses.replaceChildren(h("p", { class: "error" }, `/metrics: ${error.message}`));
    }
  }
  main.replaceChildren(
    h("h1", {}, "Server"),
    h("div", { class: "card" }, health, h("button", { type: "button", onclick: load }, "Refresh")),
    h("div", { class: "grid2" }, statuses, errors, tools),
  );
  load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}
