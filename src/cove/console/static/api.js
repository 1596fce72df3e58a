// Calls to Cove's /v1 API with the signed-in key. The key lives in this tab's sessionStorage only:
// never in a URL, a cookie or the page's markup.
const KEY_NAME = "cove.apiKey";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function signIn(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY_NAME);
}

let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${apiKey()}`, ...extra };
}

export function url(path, query) {
  const target = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(name, value);
  }
  return target.pathname + target.search;
}

async function failure(answer) {
  let code = "HttpError";
  let message = `${answer.status} ${answer.statusText}`;
  try {
    const body = await answer.json();
    if (body.error) ({ code, message } = body.error);
  } catch {
    // not Cove's JSON envelope
  }
  if (answer.status === 401) onUnauthorized();
  return new ApiError(answer.status, code, message);
}

// A JSON call: `body` is sent as JSON; answers the parsed JSON, or throws ApiError.
export async function call(method, path, { query, body, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(url(path, query), init);
  if (!answer.ok) throw await failure(answer);
  return answer.json();
}

// A key check that does not sign anyone out.
export async function keyWorks(key) {
  const answer = await fetch("/v1/sessions?limit=1", { headers: { Authorization: `Bearer ${key}` } });
  if (answer.status === 401) return false;
  if (!answer.ok) throw new ApiError(answer.status, "HttpError", `the server answered ${answer.status}`);
  return true;
}

// A tool in a session; answers the tool's text parsed as JSON when it is JSON.
export async function tool(sessionId, name, args = {}) {
  const answer = await call("POST", `/v1/sessions/${encodeURIComponent(sessionId)}/tools/${name}`, {
    body: { arguments: args },
  });
  const text = answer.result.content.map((part) => part.text || "").join("");
  if (answer.result.isError) throw new ApiError(200, "ToolError", text);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// Downloads a session's file through the API (the key in a header), then saves it from memory.
export async function downloadFile(sessionId, path) {
  const answer = await fetch(url(`/v1/sessions/${encodeURIComponent(sessionId)}/files`, { path }), {
    headers: headers(),
  });
  if (!answer.ok) throw await failure(answer);
  saveBlob(await answer.blob(), path.split("/").pop() || "download");
}

export function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

// Uploads with progress (XMLHttpRequest reports it; fetch does not): onProgress(fraction).
export function uploadFile(sessionId, path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", url(`/v1/sessions/${encodeURIComponent(sessionId)}/files`, { path }));
    request.setRequestHeader("Authorization", `Bearer ${apiKey()}`);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    request.onload = () => {
      let body = {};
      try {
        body = JSON.parse(request.responseText);
      } catch {
        // not JSON
      }
      if (request.status >= 200 && request.status < 300) resolve(body);
      else {
        if (request.status === 401) onUnauthorized();
        reject(new ApiError(request.status, body.error?.code || "HttpError", body.error?.message || request.statusText));
      }
    };
    request.onerror = () => reject(new ApiError(0, "NetworkError", "the upload was cut off"));
    request.send(file);
  });
}

// The key's sessions as they change: GET /v1/events read with fetch() so the key goes in a header.
// `on(kind, data)` gets snapshot, upsert and remove; `onState(live)` says whether the stream is up.
// Reconnects after a failure until `signal` aborts.
export function sessionEvents(query, on, onState, signal) {
  let delay = 1000;
  async function run() {
    while (!signal.aborted) {
      try {
        const answer = await fetch(url("/v1/events", query), {
          headers: headers({ Accept: "text/event-stream" }),
          signal,
        });
        if (!answer.ok) throw await failure(answer);
        onState(true);
        delay = 1000;
        const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let kind = "message";
            let data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) kind = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            if (data) on(kind, JSON.parse(data));
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError && error.status === 401) return;
        if (error instanceof ApiError && error.status === 400) {
          onState(false, error.message);
          return;
        }
      }
      onState(false);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  }
  run();
}
