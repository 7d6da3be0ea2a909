// Who is using the page: the server's mode (GET /api/auth/status: accounts or not, first-run setup
// pending) and the signed-in user (GET /api/auth/me). Sign-in, first-run setup and sign-out go
// through here. Passwords pass straight from the form to the request and are never kept.
//
// Kept in this tab only (sessionStorage), never in localStorage: the composer's text when a sign-in
// ends (given back after signing in again, to the same user) and the setup token of a /setup link.

import { api } from "./api.js";
import { prefs } from "./prefs.js";

const DRAFT = "mingyan.draft";
const SETUP_TOKEN = "mingyan.setupToken";
const AUTH_PATHS = ["/login", "/setup"];

function tabGet(name) {
  try {
    return JSON.parse(sessionStorage.getItem(name));
  } catch {
    return null;
  }
}

function tabSet(name, value) {
  try {
    if (value == null) sessionStorage.removeItem(name);
    else sessionStorage.setItem(name, JSON.stringify(value));
  } catch {
    /* storage disabled: the value lives as long as this page */
  }
}

export class Session extends EventTarget {
  constructor() {
    super();
    this.status = { accounts: false, setup_required: false };
    this.user = null; // {id, username, role, ...}
    this.via = null; // session, api_key, server_key, open
  }

  /** The server has accounts and this page is not signed in: only the sign-in view can work. */
  get needsLogin() {
    return this.status.accounts && !this.user;
  }

  /** Signed in with a user account (not the local mode, not the server's own key). */
  get hasAccount() {
    return this.via === "session" || this.via === "api_key";
  }

  get isAdmin() {
    return this.user?.role === "admin";
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  /** Ask the server again: its mode, and who this page is (null when not signed in). */
  async refresh() {
    this.status = await api.get("/api/auth/status", { quiet: true });
    try {
      const me = await api.get("/api/auth/me", { quiet: true });
      this.user = me.user;
      this.via = me.via;
    } catch (error) {
      if (error.status !== 401) throw error;
      this.user = null;
      this.via = null;
    }
    if (this.status.accounts || !this.status.setup_required) this.setupToken = null;
    else this.changed();
  }

  async checkStatus() {
    this.status = await api.get("/api/auth/status", { quiet: true });
    return this.status;
  }

  async login(username, password) {
    this.adopt(await api.post("/api/auth/login", { username, password }, { quiet: true }));
  }

  async setup(token, username, password) {
    this.adopt(await api.post("/api/auth/setup", { token, username, password }, { quiet: true }));
    this.setupToken = null;
  }

  /** End this sign-in on the server (the cookies go with it). */
  async logout() {
    try {
      await api.post("/api/auth/logout", undefined, { quiet: true });
    } finally {
      this.forget();
    }
  }

  /** This page is no longer signed in (signed out, or the server said 401). */
  forget() {
    this.user = null;
    this.via = null;
    this.changed();
  }

  adopt(answer) {
    this.user = answer.user;
    this.via = "session";
    this.status = { accounts: true, setup_required: false };
    // A key kept in Settings would be sent instead of the session (and a stale one refused): the
    // sign-in replaces it.
    prefs.set("apiKey", null);
    this.changed();
  }

  get setupToken() {
    return tabGet(SETUP_TOKEN);
  }

  set setupToken(token) {
    tabSet(SETUP_TOKEN, token || null);
    this.changed();
  }

  /** Keep the composer's text while the user signs in again. */
  saveDraft(text) {
    if (text && text.trim()) tabSet(DRAFT, { text, user: this.user?.username ?? null });
  }

  /** The text kept by saveDraft, once, if it was typed by this user (or before anyone signed in). */
  takeDraft() {
    const draft = tabGet(DRAFT);
    tabSet(DRAFT, null);
    if (!draft || typeof draft.text !== "string") return null;
    if (draft.user && draft.user !== this.user?.username) return null;
    return draft.text;
  }
}

/** A path of this site to go back to after signing in; anything else (another origin, the sign-in
 * views themselves) gives "/". */
export function safeNext(value) {
  if (typeof value !== "string" || !value.startsWith("/") || value.startsWith("//") || value.includes("\\")) return "/";
  let url;
  try {
    url = new URL(value, location.origin);
  } catch {
    return "/";
  }
  if (url.origin !== location.origin || AUTH_PATHS.includes(url.pathname)) return "/";
  return url.pathname + url.search;
}

/** The sign-in address that comes back to `path` afterwards. */
export function loginPath(path = location.pathname + location.search) {
  const next = safeNext(path);
  return next === "/" ? "/login" : `/login?next=${encodeURIComponent(next)}`;
}
