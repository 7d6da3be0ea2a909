// Building blocks of the account and admin views: labelled fields, password rules, tables, dates and
// numbers in the page's language, and the wording of the server's refusals.

import { h } from "./dom.js";
import { lang, t, tr } from "./i18n.js";

export const PASSWORD_MIN = 8; // the server's rule (mingyan/store/credentials.py)
export const LIMIT_FIELDS = [
  { name: "requests_per_minute", label: "limitRequestsPerMinute" },
  { name: "tokens_per_day", label: "limitTokensPerDay" },
  { name: "concurrent_streams", label: "limitConcurrentStreams" },
];

/** <label> with its caption above the control. */
export function field(labelKey, control, hintKey = null) {
  return h("label", { class: "field" }, h("span", tr(labelKey)), control, hintKey ? h("small", { class: "hint", ...tr(hintKey) }) : null);
}

export function input(props) {
  return h("input", { class: "input", ...props });
}

/** A password box; `autocomplete` is "current-password" or "new-password". */
export function passwordInput(name, autocomplete, extra = {}) {
  return input({ type: "password", name, autocomplete, required: true, maxlength: 1024, ...extra });
}

export function usernameInput(extra = {}) {
  return input({ type: "text", name: "username", autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true, maxlength: 64, ...extra });
}

/** Whole numbers ≥ 1; empty means "the default" (null). */
export function limitInput(name) {
  return input({ type: "number", name, min: 1, step: 1, inputmode: "numeric", "data-i18n-placeholder": "defaultValue", placeholder: t("defaultValue") });
}

/** The limit fields inside `root`, as the API takes them. */
export function readLimits(root) {
  const limits = {};
  for (const { name } of LIMIT_FIELDS) {
    const raw = root.querySelector(`input[name="${name}"]`).value.trim();
    limits[name] = raw === "" ? null : parseInt(raw, 10);
  }
  return limits;
}

/** The reason a new password is refused before asking the server, or null. */
export function newPasswordProblem(password, repeat) {
  if ([...password].length < PASSWORD_MIN) return t("passwordTooShort", { n: PASSWORD_MIN });
  if (password !== repeat) return t("passwordsDiffer");
  return null;
}

/** A <p role=alert> for a form's errors: show(text) / clear(). */
export function errorLine() {
  const line = h("p", { class: "error-text form-error", role: "alert" });
  line.show = (text) => (line.textContent = text || "");
  line.clear = () => (line.textContent = "");
  return line;
}

/** The server's refusal in the page's language when it is one we know, else its own message. */
export function problem(error) {
  if (error?.code === "last_admin") return t("lastAdmin");
  if (error?.code === "username_taken") return t("usernameTaken");
  if (error?.status === 0) return t("networkError");
  return error?.message || String(error);
}

export function formatDate(value) {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(lang(), { dateStyle: "medium", timeStyle: "short" }).format(date);
}

export function formatNumber(value) {
  return value == null ? "—" : Number(value).toLocaleString(lang());
}

/** A wait in seconds as "N s" / "N min". */
export function formatWait(seconds) {
  const s = Math.max(1, Math.round(seconds || 0));
  return s < 90 ? t("seconds", { n: s }) : t("minutes", { n: Math.ceil(s / 60) });
}

/** `since=` for a date input's value (local midnight), or "" when empty. */
export function sinceQuery(dateValue) {
  if (!dateValue) return "";
  const date = new Date(`${dateValue}T00:00:00`);
  return Number.isNaN(date.getTime()) ? "" : `?since=${encodeURIComponent(date.toISOString())}`;
}

/** A table: `columns` are i18n keys of the headers, `rows` arrays of cells (nodes or text). */
export function table(columns, rows, { empty = "nothingYet", className = "" } = {}) {
  const body = rows.length
    ? rows.map((row) => h("tr", row.attrs || {}, (row.cells || row).map((cell) => h("td", {}, cell))))
    : [h("tr", {}, h("td", { colspan: columns.length, class: "empty", ...tr(empty) }))];
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { class: `data-table ${className}`.trim() }, h("thead", {}, h("tr", {}, columns.map((key) => h("th", { scope: "col", ...tr(key) })))), h("tbody", {}, body)),
  );
}

/** A titled card of a page. */
export function card(titleKey, ...children) {
  return h("section", { class: "card" }, h("h2", tr(titleKey)), ...children);
}
