// One session: its information and labels, a terminal, its files, code cells, its desktop, links to
// its ports, and its CPU and memory over time.
import { ApiError, call, downloadFile, sessionEvents, tool, uploadFile } from "./api.js";
import { age, bytes, h, sparkline, statusBadge, tabs, toast } from "./dom.js";
import { actionButtons } from "./sessions.js";

const METRICS_EVERY_MS = 5000;
const METRICS_KEPT = 60;
const EDITABLE_BYTES = 512 * 1024;
const HOME = "/home/user";

function infoPanel(session) {
  const rows = [
    ["Image", session.image_id],
    ["Created", `${new Date(session.created_at).toLocaleString()} (${age(session.created_at)} ago)`],
    ["Last active", new Date(session.last_active_at).toLocaleString()],
    ["Memory", `${session.resources.memory_mb} MiB`],
    ["CPUs", session.resources.cpus],
    ["Processes", session.resources.pids],
    ["Disk", session.resources.disk_mb ? `${session.resources.disk_mb} MiB` : "no limit"],
    ["Screen", `${session.screen.width} × ${session.screen.height}`],
    ["Idle timeout", session.idle_timeout_s ? `${session.idle_timeout_s} s` : "none"],
    ["Lifetime", session.max_lifetime_s ? `${session.max_lifetime_s} s` : "none"],
  ];
  if (session.status_reason) rows.push(["Why it ended", session.status_reason]);
  return h("dl", { class: "info" }, rows.map(([name, value]) => [h("dt", {}, name), h("dd", {}, String(value))]));
}

function labelsEditor(sessionId, labels) {
  const list = h("div", { id: "label-rows" });
  function addRow(key = "", value = "") {
    const index = list.children.length + 1;
    const row = h(
      "div",
      { class: "row" },
      h("label", {}, `Key ${index}`, h("input", { class: "label-key", value: key, size: 16 })),
      h("label", {}, `Value ${index}`, h("input", { class: "label-value", value, size: 24 })),
      h("button", { type: "button", class: "quiet", "aria-label": `Remove label ${index}`, onclick: () => row.remove() }, "Remove"),
    );
    list.append(row);
  }
  for (const [key, value] of Object.entries(labels)) addRow(key, value);
  const form = h(
    "form",
    { "aria-label": "Labels" },
    list,
    h("p", { class: "actions" }, h("button", { type: "button", onclick: () => addRow() }, "Add label"), h("button", { type: "submit", class: "primary" }, "Save labels")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const next = {};
    for (const row of list.children) {
      const key = row.querySelector(".label-key").value.trim();
      if (key) next[key] = row.querySelector(".label-value").value;
    }
    try {
      await call("PUT", `/v1/sessions/${encodeURIComponent(sessionId)}/labels`, { body: { labels: next } });
      toast("Labels saved");
    } catch (error) {
      toast(`Labels: ${error.message}`, true);
    }
  });
  return form;
}

function metricsPanel(sessionId) {
  const cpu = [];
  const memory = [];
  const cpuChart = h("div", { class: "chart", id: "chart-cpu" });
  const memoryChart = h("div", { class: "chart", id: "chart-memory" });
  const element = h("div", { class: "charts" }, cpuChart, memoryChart);
  let total = 0;
  function draw() {
    const lastCpu = cpu.at(-1);
    const lastMemory = memory.at(-1);
    cpuChart.replaceChildren(
      h("div", {}, "CPU ", h("strong", {}, lastCpu === undefined ? "–" : `${lastCpu.toFixed(1)} %`), h("span", { class: "muted" }, " of its limit")),
      sparkline(cpu, 100),
    );
    memoryChart.replaceChildren(
      h("div", {}, "Memory ", h("strong", {}, lastMemory === undefined ? "–" : bytes(lastMemory)), h("span", { class: "muted" }, ` of ${bytes(total)}`)),
      sparkline(memory, Math.max(...memory, 1) * 1.25),
    );
  }
  async function sample() {
    try {
      const { metrics } = await call("GET", `/v1/sessions/${encodeURIComponent(sessionId)}/metrics`);
      cpu.push(metrics.cpu_used_pct);
      memory.push(metrics.mem_used);
      total = metrics.mem_total;
      if (cpu.length > METRICS_KEPT) cpu.shift();
      if (memory.length > METRICS_KEPT) memory.shift();
      draw();
    } catch {
      // paused or gone: the chart waits
    }
  }
  draw();
  sample();
  const timer = setInterval(sample, METRICS_EVERY_MS);
  return { element, stop: () => clearInterval(timer) };
}

function portsPanel(sessionId) {
  const port = h("input", { id: "link-port", type: "number", min: 30100, max: 30199, value: 30100, size: 7 });
  const kind = h("select", { id: "link-protocol" }, h("option", { value: "https" }, "HTTP"), h("option", { value: "wss" }, "WebSocket"));
  const result = h("p", { id: "link-result", "aria-live": "polite" });
  const listening = h("p", { class: "muted", id: "listening" });
  const form = h(
    "form",
    { "aria-label": "Links to ports" },
    h("p", { class: "muted" }, "A link reaches a server listening on a port 30100-30199 in the session, with no key: share it with care."),
    h("div", { class: "row" }, h("label", {}, "Port", port), h("label", {}, "Kind", kind), h("button", { type: "submit" }, "Get link")),
    listening,
    result,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await call("GET", `/v1/sessions/${encodeURIComponent(sessionId)}/link`, { query: { port: port.value, protocol_type: kind.value } });
      result.replaceChildren(
        kind.value === "https"
          ? h("a", { href: answer.url, target: "_blank", rel: "noopener noreferrer" }, answer.url)
          : h("code", {}, answer.url),
      );
    } catch (error) {
      result.replaceChildren(h("span", { class: "error" }, error.message));
    }
  });
  // Which of the link ports something listens on, from the kernel's socket tables.
  tool(sessionId, "shell", { command: "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null", timeout_ms: 5000 })
    .then((text) => {
      const ports = new Set();
      for (const line of String(text).split("\n")) {
        const fields = line.trim().split(/\s+/);
        if (fields[3] !== "0A") continue; // LISTEN
        const number = parseInt(fields[1].split(":").pop(), 16);
        if (number >= 30100 && number <= 30199) ports.add(number);
      }
      listening.textContent = ports.size ? `Listening now: ${[...ports].sort().join(", ")}` : "Nothing listens on 30100-30199 now.";
    })
    .catch(() => {});
  return form;
}

function terminalPanel(sessionId) {
  const box = h("div", { class: "terminal", id: "terminal", "aria-label": "Terminal" });
  const state = h("span", { class: "muted", id: "terminal-state", role: "status" }, "not connected");
  const reconnect = h("button", { type: "button", hidden: true }, "Connect again");
  const element = h("div", {}, h("div", { class: "row" }, state, reconnect), box);
  let socket = null;
  let term = null;
  let observer = null;

  async function connect() {
    if (document.body.dataset.terminal === "no") {
      state.textContent = "The terminal's browser code (xterm.js) is not installed on this server: run scripts/install.sh.";
      return;
    }
    const [{ Terminal }, { FitAddon }] = await Promise.all([
      import("/console/vendor/xterm/lib/xterm.mjs"),
      import("/console/vendor/xterm-fit/lib/addon-fit.mjs"),
    ]);
    if (!term) {
      term = new Terminal({ cursorBlink: true, fontSize: 13, scrollback: 5000, screenReaderMode: false });
      const fit = new FitAddon();
      term.loadAddon(fit);
      term.open(box);
      fit.fit();
      term.onData((data) => socket?.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ type: "input", data })));
      term.onResize(({ cols, rows }) => socket?.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ type: "resize", cols, rows })));
      observer = new ResizeObserver(() => {
        if (box.offsetParent) fit.fit();
      });
      observer.observe(box);
    }
    const address = new URL(`/v1/sessions/${encodeURIComponent(sessionId)}/terminal`, window.location.href);
    address.protocol = address.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(address);
    state.textContent = "connecting…";
    reconnect.hidden = true;
    socket.onopen = () => socket.send(JSON.stringify({ type: "auth", key: sessionStorage.getItem("cove.apiKey"), cols: term.cols, rows: term.rows }));
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "ready") {
        state.textContent = "connected";
        box.dataset.state = "connected";
        term.focus();
      } else if (message.type === "output") term.write(message.data);
      else if (message.type === "exit") state.textContent = `the shell exited with ${message.code}`;
      else if (message.type === "error") state.textContent = message.message;
    };
    socket.onclose = () => {
      box.dataset.state = "closed";
      if (state.textContent === "connected" || state.textContent === "connecting…") state.textContent = "disconnected";
      reconnect.hidden = false;
    };
  }
  reconnect.addEventListener("click", connect);
  return {
    element,
    start: () => {
      if (!socket || socket.readyState > WebSocket.OPEN) connect();
    },
    stop: () => {
      socket?.close();
      observer?.disconnect();
      term?.dispose();
    },
  };
}

function filesPanel(sessionId) {
  let current = HOME;
  const path = h("input", { id: "files-path", value: HOME, size: 40, class: "mono" });
  const rows = h("tbody", { id: "file-rows" });
  const upload = h("input", { type: "file", id: "upload-input" });
  const progress = h("progress", { id: "upload-progress", max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const editor = h("div", { class: "editor", id: "file-editor" });

  async function list(folder) {
    try {
      const entries = await tool(sessionId, "list_directory", { path: folder, format: "json" });
      current = folder;
      path.value = folder;
      editor.replaceChildren();
      entries.sort((a, b) => (b.type === "dir") - (a.type === "dir") || a.name.localeCompare(b.name));
      rows.replaceChildren(
        ...entries.map((entry) => {
          const isDir = entry.type === "dir";
          const actions = [];
          if (!isDir) {
            actions.push(h("button", { type: "button", "aria-label": `Download ${entry.name}`, onclick: () => downloadFile(sessionId, entry.path).catch((error) => toast(error.message, true)) }, "Download"));
            if (entry.size <= EDITABLE_BYTES) actions.push(h("button", { type: "button", "aria-label": `Edit ${entry.name}`, onclick: () => edit(entry.path) }, "Edit"));
          }
          actions.push(h("button", { type: "button", class: "danger", "aria-label": `Delete ${entry.name}`, onclick: () => remove(entry, isDir) }, "Delete"));
          return h(
            "tr",
            { dataset: { name: entry.name } },
            h("td", {}, isDir ? h("a", { href: "#", onclick: (event) => { event.preventDefault(); list(entry.path); } }, `${entry.name}/`) : entry.name),
            h("td", { class: "num" }, isDir ? "" : bytes(entry.size)),
            h("td", { class: "muted" }, entry.modified || ""),
            h("td", {}, h("div", { class: "actions" }, actions)),
          );
        }),
      );
      if (!entries.length) rows.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "This folder is empty.")));
    } catch (error) {
      toast(`${folder}: ${error.message}`, true);
    }
  }

  async function remove(entry, isDir) {
    if (!window.confirm(`Delete ${entry.path}${isDir ? " and everything in it" : ""}?`)) return;
    try {
      await tool(sessionId, "delete_file", { path: entry.path, recursive: isDir });
      list(current);
    } catch (error) {
      toast(error.message, true);
    }
  }

  async function edit(filePath) {
    try {
      const text = await tool(sessionId, "read_file", { path: filePath });
      const area = h("textarea", { id: "editor-text", spellcheck: "false", "aria-label": `Contents of ${filePath}` });
      area.value = typeof text === "string" ? text : JSON.stringify(text);
      const save = h("button", { type: "button", class: "primary" }, "Save");
      save.addEventListener("click", async () => {
        try {
          await tool(sessionId, "write_file", { path: filePath, content: area.value });
          toast(`Saved ${filePath}`);
          list(current);
        } catch (error) {
          toast(error.message, true);
        }
      });
      editor.replaceChildren(h("h2", {}, `Editing ${filePath}`), area, h("p", { class: "actions" }, save, h("button", { type: "button", onclick: () => editor.replaceChildren() }, "Close")));
      area.focus();
    } catch (error) {
      toast(`${filePath}: ${error.message}`, true);
    }
  }

  upload.addEventListener("change", async () => {
    const file = upload.files[0];
    if (!file) return;
    progress.hidden = false;
    progress.value = 0;
    try {
      await uploadFile(sessionId, `${current.replace(/\/$/, "")}/${file.name}`, file, (fraction) => {
        progress.value = fraction;
      });
      progress.value = 1;
      toast(`Uploaded ${file.name}`);
      list(current);
    } catch (error) {
      toast(`Upload: ${error.message}`, true);
    } finally {
      upload.value = "";
      setTimeout(() => {
        progress.hidden = true;
      }, 1500);
    }
  });

  const go = h("form", { class: "row", "aria-label": "Folder" },
    h("label", { class: "grow" }, "Folder", path),
    h("button", { type: "submit" }, "Open"),
    h("button", { type: "button", onclick: () => list(current.replace(/\/[^/]+\/?$/, "") || "/") }, "Up"),
    h("button", { type: "button", onclick: () => list(current) }, "Refresh"),
    h("label", {}, "Upload a file here", upload),
    progress,
  );
  go.addEventListener("submit", (event) => {
    event.preventDefault();
    list(path.value.trim() || HOME);
  });
  const table = h("table", { "aria-label": "Files" }, h("thead", {}, h("tr", {}, ["Name", "Size", "Modified", ""].map((name) => h("th", { scope: "col", class: name === "Size" ? "num" : "" }, name)))), rows);
  let loaded = false;
  return { element: h("div", {}, go, table, editor), start: () => { if (!loaded) { loaded = true; list(current); } } };
}

function resultView(bundle) {
  const parts = [];
  if (bundle["image/png"]) parts.push(h("img", { src: `data:image/png;base64,${bundle["image/png"]}`, alt: "image result" }));
  else if (bundle["image/jpeg"]) parts.push(h("img", { src: `data:image/jpeg;base64,${bundle["image/jpeg"]}`, alt: "image result" }));
  else if (bundle["image/svg+xml"]) parts.push(h("img", { src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(bundle["image/svg+xml"])}`, alt: "SVG result" }));
  else if (bundle["text/html"]) {
    // The session's HTML in a sandboxed frame: no script, an origin of its own, nothing of the console's.
    parts.push(h("iframe", { sandbox: "", srcdoc: bundle["text/html"], title: "HTML result", class: "html-result" }));
  } else if (bundle["text/markdown"]) parts.push(h("pre", {}, bundle["text/markdown"]));
  else if (bundle["text/plain"] !== undefined) parts.push(h("pre", { class: "result-text" }, bundle["text/plain"]));
  return parts;
}

function codePanel(sessionId) {
  const language = h("select", { id: "code-language" }, ["python", "bash", "javascript", "typescript", "java", "r"].map((name) => h("option", { value: name }, name)));
  const code = h("textarea", { id: "code-input", rows: 8, spellcheck: "false", placeholder: "print('hello')" });
  const run = h("button", { type: "submit", class: "primary", id: "code-run" }, "Run");
  const outputs = h("div", { id: "code-outputs", "aria-live": "polite" });
  const form = h(
    "form",
    { "aria-label": "Code cell" },
    h("div", { class: "row" }, h("label", {}, "Language", language), h("span", { class: "muted" }, "Ctrl+Enter runs the cell; state is kept between cells.")),
    h("label", { class: "block" }, "Code", code),
    h("p", {}, run),
    outputs,
  );
  code.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    run.disabled = true;
    run.textContent = "Running…";
    const cell = h("div", { class: "cell-output", dataset: { state: "running" } }, h("pre", { class: "muted" }, code.value));
    outputs.prepend(cell);
    try {
      let answer;
      try {
        answer = await tool(sessionId, "run_code", { code: code.value, language: language.value });
      } catch (error) {
        // A cell that raised is a failed tool call whose text is still the cell's full answer.
        if (error.code !== "ToolError" || !error.message.startsWith("{")) throw error;
        answer = JSON.parse(error.message);
      }
      cell.append(h("div", { class: "muted" }, `[${answer.execution_count ?? ""}] ${answer.execution_time !== undefined ? `${answer.execution_time.toFixed(3)} s` : ""}`));
      if (answer.stdout?.length) cell.append(h("pre", { class: "stdout" }, answer.stdout.join("")));
      if (answer.stderr?.length) cell.append(h("pre", { class: "stderr" }, answer.stderr.join("")));
      for (const raw of answer.result || []) cell.append(...resultView(typeof raw === "string" ? JSON.parse(raw) : raw));
      if (answer.error) cell.append(h("pre", { class: "stderr" }, `${answer.error.name}: ${answer.error.value}\n${answer.error.traceback || ""}`));
      else if (answer.executionError) cell.append(h("pre", { class: "stderr" }, answer.executionError));
      cell.dataset.state = "done";
    } catch (error) {
      cell.append(h("pre", { class: "stderr" }, error.message));
      cell.dataset.state = "failed";
    } finally {
      run.disabled = false;
      run.textContent = "Run";
    }
  });
  return form;
}

function desktopPanel(sessionId) {
  const frameBox = h("div", { id: "desktop-box" });
  const open = h("p", {});
  async function show(interactive) {
    try {
      const answer = await call("GET", `/v1/sessions/${encodeURIComponent(sessionId)}/desktop_url`, { query: { interactive } });
      frameBox.replaceChildren(h("iframe", { class: "desktop-frame", src: answer.url, title: `Desktop of ${sessionId}` }));
      open.replaceChildren(h("a", { href: answer.url, target: "_blank", rel: "noopener noreferrer" }, "Open the viewer in a new tab"));
    } catch (error) {
      toast(`Desktop: ${error.message}`, true);
    }
  }
  return h(
    "div",
    {},
    h("p", { class: "muted" }, "The session's desktop, live; it starts on first view. The viewer's URL needs no key: it is shown only here."),
    h("p", { class: "actions" }, h("button", { type: "button", id: "desktop-view", onclick: () => show(false) }, "View"), h("button", { type: "button", id: "desktop-control", onclick: () => show(true) }, "Take control")),
    open,
    frameBox,
  );
}

export function sessionView(main, sessionId) {
  const stream = new AbortController();
  const heading = h("h1", {}, h("span", { class: "mono" }, sessionId));
  main.replaceChildren(heading, h("p", { class: "muted" }, "Loading…"));
  let stops = [];
  let drawn = false;
  let status = null;
  const statusSlot = h("span", { id: "session-status", role: "status", "aria-live": "polite" });
  const actionSlot = h("span", {});

  function showStatus(session) {
    status = session.status;
    statusSlot.replaceChildren(statusBadge(session.status));
    actionSlot.replaceChildren(
      actionButtons(session, (action) => {
        if (action === "delete") window.location.hash = "#/sessions";
      }),
    );
  }

  function draw(session) {
    drawn = true;
    showStatus(session);
    heading.append(statusSlot, actionSlot);
    const terminal = terminalPanel(sessionId);
    const files = filesPanel(sessionId);
    const metrics = metricsPanel(sessionId);
    stops = [terminal.stop, metrics.stop];
    const overview = h(
      "div",
      { class: "grid2" },
      h("section", { class: "card", "aria-labelledby": "info-title" }, h("h2", { id: "info-title" }, "Information"), infoPanel(session)),
      h("section", { class: "card", "aria-labelledby": "labels-title" }, h("h2", { id: "labels-title" }, "Labels"), labelsEditor(sessionId, session.labels)),
      h("section", { class: "card", "aria-labelledby": "metrics-title" }, h("h2", { id: "metrics-title" }, "Use"), metrics.element),
      h("section", { class: "card", "aria-labelledby": "ports-title" }, h("h2", { id: "ports-title" }, "Ports"), portsPanel(sessionId)),
    );
    const views = tabs(
      [
        { name: "overview", title: "Overview", panel: overview },
        { name: "terminal", title: "Terminal", panel: terminal.element },
        { name: "files", title: "Files", panel: files.element },
        { name: "code", title: "Code", panel: codePanel(sessionId) },
        { name: "desktop", title: "Desktop", panel: desktopPanel(sessionId) },
      ],
      (name) => {
        if (name === "terminal") terminal.start();
        if (name === "files") files.start();
      },
    );
    main.replaceChildren(heading, h("p", {}, h("a", { href: "#/sessions" }, "← All sessions")), views.element);
    views.select("overview");
  }

  call("GET", `/v1/sessions/${encodeURIComponent(sessionId)}`)
    .then(({ session }) => {
      draw(session);
      sessionEvents(
        {},
        (kind, data) => {
          if (kind === "snapshot") {
            const found = data.sessions.find((each) => each.session_id === sessionId);
            if (found && found.status !== status) showStatus(found);
          } else if (kind === "upsert" && data.session.session_id === sessionId) showStatus(data.session);
          else if (kind === "remove" && data.session_id === sessionId) {
            call("GET", `/v1/sessions/${encodeURIComponent(sessionId)}`).then(({ session: ended }) => showStatus(ended)).catch(() => {});
          }
        },
        () => {},
        stream.signal,
      );
    })
    .catch((error) => {
      const text = error instanceof ApiError && error.status === 404 ? "No such session of this key." : error.message;
      main.replaceChildren(heading, h("p", { class: "error", role: "alert" }, text), h("p", {}, h("a", { href: "#/sessions" }, "← All sessions")));
    });
  return () => {
    stream.abort();
    if (drawn) for (const stop of stops) stop();
  };
}
