// The server's /api and /v1, over fetch(). Errors become ApiError with the server's message
// (OpenAI's error JSON). Streams are async iterators of the JSON objects of SSE `data:` lines.

import { SSEParser } from "./sse.js";
import { prefs } from "./prefs.js";

export class ApiError extends Error {
  constructor(status, message, { param = null, code = null, retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.param = param;
    this.code = code;
    this.retryAfter = retryAfter; // seconds, from Retry-After (429)
  }
}

function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

function headers(extra = {}) {
  const result = { ...extra };
  const key = prefs.get("apiKey");
  if (key) result.Authorization = `Bearer ${key}`;
  // A login session (cookie) must prove each state-changing request with its CSRF token.
  const csrf = cookie("mingyan_csrf");
  if (csrf) result["X-CSRF-Token"] = csrf;
  return result;
}

/** The error of a failed response. A 401 is announced as "mingyan:unauthorized" (the page sends the
 * user to sign in) unless the caller expects it (`quiet`: sign-in itself, the start-up check). */
async function errorOf(response, path, quiet) {
  let message = `HTTP ${response.status} ${response.statusText}`;
  const retry = parseInt(response.headers.get("Retry-After") || "", 10);
  let details = { retryAfter: Number.isFinite(retry) ? retry : null };
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      details = { ...details, param: body.error.param, code: body.error.code };
    }
  } catch {
    /* not JSON */
  }
  if (response.status === 401 && !quiet) {
    window.dispatchEvent(new CustomEvent("mingyan:unauthorized", { detail: { message, path } }));
  }
  return new ApiError(response.status, message, details);
}

async function request(method, path, body, { signal, quiet = false } = {}) {
  const init = { method, headers: headers(), signal, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    init.body = body instanceof Blob ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, error.message || "network error", { code: "network" });
  }
  if (!response.ok) throw await errorOf(response, path, quiet);
  return response;
}

async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SSEParser();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const event of parser.feed(value)) {
        try {
          yield JSON.parse(event.data);
        } catch (error) {
          if (!(error instanceof SyntaxError)) throw error;
        }
      }
    }
    finished = true;
  } finally {
    if (!finished) reader.cancel().catch(() => {}); // the consumer left early: close the connection
  }
}

function filenameOf(disposition) {
  const match = /filename="([^"]+)"/.exec(disposition || "");
  return match ? match[1] : null;
}

export const api = {
  async json(method, path, body, options) {
    const response = await request(method, path, body, options);
    return response.status === 204 ? null : response.json();
  },
  get: (path, options) => api.json("GET", path, undefined, options),
  post: (path, body, options) => api.json("POST", path, body ?? {}, options),
  patch: (path, body) => api.json("PATCH", path, body),
  put: (path, body) => api.json("PUT", path, body),
  delete: (path) => api.json("DELETE", path),

  /** POST (or GET) a streaming route; yields each event object. */
  async *stream(method, path, body, { signal } = {}) {
    const response = await request(method, path, body, { signal });
    yield* events(response);
  },

  /** Fetch a file with this client's credentials and hand it to the browser as a download. */
  async download(path, fallbackName) {
    const response = await request("GET", path);
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = filenameOf(response.headers.get("Content-Disposition")) || fallbackName;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
  },

  /** POST a file as the raw request body. */
  upload: (path, file) => api.json("POST", path, file),
};

export const paths = {
  conversations: (query = "") => `/api/conversations${query}`,
  conversation: (id) => `/api/conversations/${encodeURIComponent(id)}`,
  message: (cid, mid, action) =>
    `/api/conversations/${encodeURIComponent(cid)}/messages/${encodeURIComponent(mid)}/${action}`,
};

/** The chat models of a /v1/models answer (the embedding model serves /v1/embeddings only). */
export function chatModels(list) {
  return list.data.filter((m) => m.kind !== "embedding");
}
