// /admin, for administrators (the API enforces it; the page says so to anyone else): users (see
// admin-users.js), everyone's usage, and the audit log (newest first, by pages, one event or all).
// Everything the server stores from users (names, audit targets and details) goes in as text.

import { api } from "./api.js";
import { h } from "./dom.js";
import { t, tr } from "./i18n.js";
import { UsersTab } from "./admin-users.js";
import { ReportsTab } from "./reports-view.js";
import { BanksTab } from "./banks-view.js";
import { LiveTab } from "./live-view.js";
import { usageTable } from "./account-view.js";
import { card, errorLine, field, formatDate, input, problem, sinceQuery, table } from "./forms.js";

const AUDIT_PAGE = 50;
export const AUDIT_EVENTS = [
  "login", "login_failed", "logout", "password_changed", "key_created", "key_revoked", "user_created",
  "user_disabled", "user_enabled", "role_changed", "quota_changed", "user_deleted", "conversation_deleted", "export",
];
const TABS = [
  { id: "users", label: "users" },
  { id: "usage", label: "usageAll" },
  { id: "audit", label: "auditLog" },
  { id: "reports", label: "reports" },
  { id: "banks", label: "keywordBanks" },
  { id: "live", label: "liveReplies" },
];

export class AdminView {
  /** `app`: {frame.open(titleKey) -> element, session} */
  constructor(app) {
    this.app = app;
    this.tab = "users";
  }

  show() {
    const root = this.app.frame.open("administration");
    const { session } = this.app;
    if (session.via === "open") {
      // Local mode: the first administrator comes from the setup link (it adopts the conversations
      // made so far); a user created here would lock this browser out instead.
      root.append(card("administration", h("p", tr("localModeNote"))));
      return;
    }
    if (!session.isAdmin || !session.user) {
      root.append(card("administration", h("p", { class: "needs-admin", ...tr("needsAdmin") })));
      return;
    }
    this.tabs = h("div", { class: "tabs", role: "tablist" },
      TABS.map(({ id, label }) => h("button", { type: "button", role: "tab", class: "tab", "data-tab": id, onclick: () => this.select(id), ...tr(label) })));
    this.body = h("div", { class: "card tab-panel", role: "tabpanel" });
    root.append(this.tabs, this.body);
    this.select(this.tab);
  }

  select(id) {
    this.tab = id;
    for (const button of this.tabs.children) button.setAttribute("aria-selected", String(button.dataset.tab === id));
    if (id === "users") {
      const users = new UsersTab(this.app.session);
      this.body.replaceChildren(users.root);
      users.load();
    } else if (id === "usage") {
      this.body.replaceChildren(this.usagePanel());
    } else if (id === "banks") {
      const banks = new BanksTab();
      this.body.replaceChildren(banks.root);
      banks.load();
    } else if (id === "live") {
      const live = new LiveTab();
      this.body.replaceChildren(live.root);
      live.load();
    } else if (id === "reports") {
      const reports = new ReportsTab();
      this.body.replaceChildren(reports.root);
      reports.load();
    } else {
      this.body.replaceChildren(new AuditPanel().root);
    }
  }

  usagePanel() {
    const list = h("div", { class: "usage-list" });
    const since = input({ type: "date", name: "since", id: "admin-usage-since" });
    const load = async () => {
      try {
        list.replaceChildren(usageTable((await api.get(`/api/admin/usage${sinceQuery(since.value)}`)).data, { withUser: true }));
      } catch (error) {
        list.replaceChildren(h("p", { class: "error-text", text: problem(error) }));
      }
    };
    since.addEventListener("change", load);
    load();
    return h("div", { class: "tab-body", id: "admin-usage" }, field("since", since, "sinceHint"), list);
  }
}

class AuditPanel {
  constructor() {
    this.offset = 0;
    this.error = errorLine();
    this.filter = h("select", { class: "input", id: "audit-event", "aria-label": t("auditEvent") },
      h("option", { value: "", ...tr("allEvents") }),
      AUDIT_EVENTS.map((event) => h("option", { value: event, ...tr(`event_${event}`) })));
    this.filter.addEventListener("change", () => this.load(0));
    this.newer = h("button", { type: "button", class: "button small", "data-page": "newer", onclick: () => this.load(this.offset - AUDIT_PAGE), ...tr("newer") });
    this.older = h("button", { type: "button", class: "button small", "data-page": "older", onclick: () => this.load(this.offset + AUDIT_PAGE), ...tr("older") });
    this.pageLabel = h("span", { class: "hint page-label" });
    this.list = h("div", { class: "audit-list" });
    this.names = new Map(); // user id -> username, for entries that name their actor by id
    this.root = h("div", { class: "tab-body", id: "admin-audit" },
      h("div", { class: "toolbar" }, field("auditEvent", this.filter), h("div", { class: "pager" }, this.newer, this.pageLabel, this.older)),
      this.error, this.list);
    this.start();
  }

  async start() {
    try {
      for (const user of (await api.get("/api/admin/users")).data) this.names.set(user.id, user.username);
    } catch {
      /* the entries show the ids */
    }
    await this.load(0);
  }

  async load(offset) {
    const event = this.filter.value;
    const query = new URLSearchParams({ limit: AUDIT_PAGE, offset: Math.max(0, offset) });
    if (event) query.set("event", event);
    try {
      const page = await api.get(`/api/admin/audit?${query}`);
      this.offset = Math.max(0, offset);
      this.error.clear();
      this.list.replaceChildren(table(["when", "actor", "auditEvent", "target", "address", "details"], page.data.map((entry) => entryRow(entry, this.names)), { empty: "noAudit", className: "audit-table" }));
      this.newer.disabled = this.offset === 0;
      this.older.disabled = !page.has_more;
      const args = { n: this.offset / AUDIT_PAGE + 1 };
      this.pageLabel.dataset.i18n = "pageN";
      this.pageLabel.dataset.i18nArgs = JSON.stringify(args);
      this.pageLabel.textContent = t("pageN", args);
    } catch (error) {
      this.error.show(problem(error));
    }
  }
}

function entryRow(entry, names) {
  const label = t(`event_${entry.event}`);
  // Entries written by the routes name the acting user by id (mingyan/api/audit.py): show the name.
  const actor = (!entry.actor_id && names.get(entry.actor_name)) || entry.actor_name || "—";
  return {
    attrs: { "data-event": entry.event, "data-id": entry.id },
    cells: [
      h("time", { datetime: entry.at, text: formatDate(entry.at) }),
      h("span", { class: "audit-actor", title: entry.actor_id || entry.actor_name, text: actor }),
      h("span", { class: "audit-event", title: entry.event, text: label === `event_${entry.event}` ? entry.event : label }),
      h("span", { class: "audit-target", text: entry.target }),
      h("span", { class: "audit-ip", text: entry.ip || "—" }),
      h("span", { class: "audit-details", text: detailsText(entry.details) }),
    ],
  };
}

function detailsText(details) {
  return Object.entries(details || {})
    .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(", ");
}
