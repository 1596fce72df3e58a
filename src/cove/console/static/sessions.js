// The session list: live through the event stream, filtered by labels and status, with CPU and
// memory from each running session's metrics, and the create form.
import { call, sessionEvents } from "./api.js";
import { age, bytes, h, labelChips, parseLabels, statusBadge, toast } from "./dom.js";

const METRICS_EVERY_MS = 10_000;
const METRICS_AT_MOST = 25;
const STATUSES = ["RUNNING", "PAUSING", "PAUSED", "RESUMING", "DELETING", "DELETED"];

export async function sessionAction(sessionId, action) {
  const path = `/v1/sessions/${encodeURIComponent(sessionId)}`;
  try {
    if (action === "delete") {
      if (!window.confirm(`Delete ${sessionId}? Its processes and files are gone for good.`)) return false;
      await call("DELETE", path);
    } else {
      await call("POST", `${path}/${action}`);
    }
    return true;
  } catch (error) {
    toast(`${action} ${sessionId}: ${error.message}`, true);
    return false;
  }
}

export function actionButtons(session, after = () => {}) {
  const buttons = [];
  const run = (action) => async (event) => {
    event.currentTarget.disabled = true;
    if (await sessionAction(session.session_id, action)) after(action);
  };
  if (session.status === "RUNNING") buttons.push(h("button", { type: "button", onclick: run("pause"), "aria-label": `Pause ${session.session_id}` }, "Pause"));
  if (session.status === "PAUSED") buttons.push(h("button", { type: "button", onclick: run("resume"), "aria-label": `Resume ${session.session_id}` }, "Resume"));
  if (session.status !== "DELETED" && session.status !== "DELETING") {
    buttons.push(h("button", { type: "button", class: "danger", onclick: run("delete"), "aria-label": `Delete ${session.session_id}` }, "Delete"));
  }
  return h("div", { class: "actions" }, buttons);
}

function createForm() {
  const image = h("select", { id: "create-image", name: "image" }, h("option", { value: "" }, "server default"));
  const labels = h("input", { id: "create-labels", name: "labels", placeholder: "team=a, job=42", size: 28 });
  const memory = h("input", { id: "create-memory", name: "memory", type: "number", min: 64, step: 64, placeholder: "1024", size: 8 });
  const cpus = h("input", { id: "create-cpus", name: "cpus", type: "number", min: 0.1, step: 0.1, placeholder: "1", size: 6 });
  const button = h("button", { type: "submit", class: "primary" }, "Create session");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "create-title" },
    h("h2", { id: "create-title" }, "New session"),
    h(
      "div",
      { class: "row" },
      h("label", {}, "Image", image),
      h("label", {}, "Labels", labels),
      h("label", {}, "Memory (MiB)", memory),
      h("label", {}, "CPUs", cpus),
      button,
    ),
  );
  call("GET", "/v1/images")
    .then((answer) => {
      for (const each of answer.images) image.append(h("option", { value: each.image_id }, each.image_id));
    })
    .catch(() => {});
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    try {
      if (image.value) body.image_id = image.value;
      const parsed = parseLabels(labels.value);
      if (Object.keys(parsed).length) body.labels = parsed;
    } catch (error) {
      toast(`Labels: ${error.message}`, true);
      return;
    }
    const resources = {};
    if (memory.value) resources.memory_mb = Number(memory.value);
    if (cpus.value) resources.cpus = Number(cpus.value);
    if (Object.keys(resources).length) body.resources = resources;
    button.disabled = true;
    button.textContent = "Creating…";
    try {
      const answer = await call("POST", "/v1/sessions", { body });
      toast(`Created ${answer.session.session_id}`);
      labels.value = "";
    } catch (error) {
      toast(`Create: ${error.message}`, true);
    } finally {
      button.disabled = false;
      button.textContent = "Create session";
    }
  });
  return form;
}

export function sessionsView(main) {
  const sessions = new Map();
  const metrics = new Map();
  let stream = new AbortController();
  const live = h("span", { class: "live-dot", title: "live updates", "aria-hidden": "true" });
  const liveText = h("span", { class: "muted", role: "status" }, "connecting…");
  const labelFilter = h("input", { id: "filter-labels", name: "labels", placeholder: "team=a", size: 24 });
  const statusFilter = h(
    "select",
    { id: "filter-status", name: "status" },
    h("option", { value: "" }, "every live status"),
    STATUSES.map((status) => h("option", { value: status }, status)),
  );
  const filters = h(
    "form",
    { class: "card row", role: "search", "aria-label": "Filter sessions" },
    h("label", {}, "Labels", labelFilter),
    h("label", {}, "Status", statusFilter),
    h("button", { type: "submit" }, "Filter"),
    h("span", { class: "grow" }),
    live,
    liveText,
  );
  const body = h("tbody", { id: "session-rows" });
  const count = h("span", { class: "muted", id: "session-count" });
  const table = h(
    "table",
    { "aria-label": "Sessions" },
    h(
      "thead",
      {},
      h("tr", {}, ["Session", "Status", "Image", "Labels", "Age", "CPU", "Memory", ""].map((name) => h("th", { scope: "col", class: name === "CPU" || name === "Memory" ? "num" : "" }, name))),
    ),
    body,
  );

  function draw() {
    const rows = [...sessions.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    count.textContent = `${rows.length} session${rows.length === 1 ? "" : "s"}`;
    body.replaceChildren(
      ...rows.map((session) => {
        const used = metrics.get(session.session_id);
        return h(
          "tr",
          { dataset: { sessionId: session.session_id, status: session.status } },
          h("td", {}, h("a", { href: `#/sessions/${encodeURIComponent(session.session_id)}`, class: "mono" }, session.session_id)),
          h("td", {}, statusBadge(session.status)),
          h("td", {}, session.image_id),
          h("td", {}, labelChips(session.labels)),
          h("td", { title: session.created_at }, age(session.created_at)),
          h("td", { class: "num" }, used && session.status === "RUNNING" ? `${used.cpu_used_pct.toFixed(1)} %` : ""),
          h("td", { class: "num" }, used && session.status === "RUNNING" ? `${bytes(used.mem_used)} / ${bytes(used.mem_total)}` : ""),
          h("td", {}, actionButtons(session)),
        );
      }),
    );
    if (!rows.length) body.append(h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No sessions match.")));
  }

  function listen() {
    stream.abort();
    stream = new AbortController();
    const query = { status: statusFilter.value };
    try {
      const labels = parseLabels(labelFilter.value);
      if (Object.keys(labels).length) query.labels = JSON.stringify(labels);
    } catch (error) {
      toast(`Labels: ${error.message}`, true);
      return;
    }
    sessionEvents(
      query,
      (kind, data) => {
        if (kind === "snapshot") {
          sessions.clear();
          for (const session of data.sessions) sessions.set(session.session_id, session);
        } else if (kind === "upsert") sessions.set(data.session.session_id, data.session);
        else if (kind === "remove") sessions.delete(data.session_id);
        draw();
      },
      (up, message) => {
        live.dataset.live = up ? "yes" : "no";
        liveText.textContent = up ? "live" : message || "reconnecting…";
      },
      stream.signal,
    );
  }

  async function readMetrics() {
    const running = [...sessions.values()].filter((session) => session.status === "RUNNING").slice(0, METRICS_AT_MOST);
    for (const session of running) {
      try {
        const answer = await call("GET", `/v1/sessions/${encodeURIComponent(session.session_id)}/metrics`);
        metrics.set(session.session_id, answer.metrics);
      } catch {
        metrics.delete(session.session_id);
      }
    }
    draw();
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    listen();
  });
  main.replaceChildren(h("h1", {}, "Sessions ", count), createForm(), filters, h("div", { class: "card" }, table));
  listen();
  const timer = setInterval(readMetrics, METRICS_EVERY_MS);
  setTimeout(readMetrics, 1500);
  const ages = setInterval(draw, 30_000);
  return () => {
    stream.abort();
    clearInterval(timer);
    clearInterval(ages);
  };
}
