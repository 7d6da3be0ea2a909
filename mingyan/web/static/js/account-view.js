// /account: who I am, sign out, change password, my API keys (the new key shown once, never stored),
// my usage. Built on /api/auth/me, /api/auth/password, /api/keys, /api/usage.

import { api } from "./api.js";
import { h } from "./dom.js";
import { t, tr } from "./i18n.js";
import { confirmDialog, toast } from "./dialogs.js";
import { icon } from "./icons.js";
import { myReportsCard } from "./reports-view.js";
import { deleteAccountCard } from "./data-rights.js";
import {
  LIMIT_FIELDS, card, errorLine, field, formatDate, formatNumber, input, limitInput, newPasswordProblem,
  passwordInput, problem, readLimits, sinceQuery, table,
} from "./forms.js";

export const roleLabel = (role) => (role === "admin" ? "roleAdmin" : "roleUser");

export class AccountView {
  /** `app`: {frame.open(titleKey) -> element, session, signOut(), navigate(path), copy(text, button)} */
  constructor(app) {
    this.app = app;
  }

  show() {
    const root = this.app.frame.open("account");
    const { session } = this.app;
    if (!session.hasAccount) {
      root.append(card("account", h("p", tr(session.via === "server_key" ? "serverKeyNote" : "localModeNote"))));
      return;
    }
    this.keysBody = h("div", { class: "keys-list" });
    this.usageBody = h("div", { class: "usage-list" });
    root.append(this.profileCard(), this.passwordCard(), this.keysCard(), this.usageCard(), myReportsCard(), deleteAccountCard());
    this.loadKeys();
    this.loadUsage();
  }

  profileCard() {
    const { user } = this.app.session;
    return card(
      "profile",
      h("dl", { class: "facts" },
        h("dt", tr("username")), h("dd", { class: "profile-username", text: user.username }),
        h("dt", tr("role")), h("dd", { class: "profile-role", ...tr(roleLabel(user.role)) })),
      h("div", { class: "row-buttons" },
        this.app.session.isAdmin ? h("a", { class: "button", href: "/admin", "data-route": "/admin", ...tr("administration") }) : null,
        this.app.session.via === "session"
          ? h("button", { type: "button", class: "button", id: "account-sign-out", onclick: () => this.app.signOut(), ...tr("signOut") })
          : null),
    );
  }

  passwordCard() {
    const error = errorLine();
    const form = h(
      "form",
      { class: "stack-form", id: "password-form", novalidate: true },
      // For password managers: whose password this is.
      h("input", { type: "text", name: "username", autocomplete: "username", value: this.app.session.user.username, hidden: true, readonly: true }),
      field("currentPassword", passwordInput("current", "current-password")),
      field("newPassword", passwordInput("new", "new-password", { minlength: 8 }), "passwordRule"),
      field("repeatPassword", passwordInput("repeat", "new-password", { minlength: 8 })),
      error,
      h("div", { class: "row-buttons" }, h("button", { type: "submit", class: "button primary", ...tr("changePassword") })),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.changePassword(form, error);
    });
    return card("changePassword", form);
  }

  async changePassword(form, error) {
    const { current, new: fresh, repeat } = form.elements;
    const body = { current_password: current.value, new_password: fresh.value };
    const check = !current.value ? t("enterCurrentPassword") : newPasswordProblem(fresh.value, repeat.value);
    for (const box of [current, fresh, repeat]) box.value = "";
    if (check) return error.show(check);
    error.clear();
    try {
      await api.post("/api/auth/password", body);
      toast(t("passwordChanged"));
    } catch (failure) {
      error.show(failure.status === 403 ? t("currentPasswordWrong") : problem(failure));
    }
    return undefined;
  }

  keysCard() {
    const error = errorLine();
    this.createdBox = h("div", { class: "key-once", hidden: true });
    const form = h(
      "form",
      { class: "stack-form", id: "key-form", novalidate: true },
      field("keyName", input({ name: "name", maxlength: 100, required: true, autocomplete: "off", "data-i18n-placeholder": "keyNameHint", placeholder: t("keyNameHint") })),
      h("details", { class: "limits" },
        h("summary", tr("keyLimits")),
        h("p", { class: "hint", ...tr("keyLimitsHint") }),
        h("div", { class: "grid" }, LIMIT_FIELDS.map(({ name, label }) => field(label, limitInput(name))))),
      error,
      h("div", { class: "row-buttons" }, h("button", { type: "submit", class: "button primary", ...tr("createKey") })),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.createKey(form, error);
    });
    return card("apiKeys", h("p", { class: "hint", ...tr("apiKeysHint") }), form, this.createdBox, this.keysBody);
  }

  async createKey(form, error) {
    const name = form.elements.name.value.trim();
    if (!name) return error.show(t("keyNameMissing"));
    error.clear();
    try {
      const created = await api.post("/api/keys", { name, limits: readLimits(form) });
      form.reset();
      this.showCreated(created);
      this.loadKeys();
    } catch (failure) {
      error.show(problem(failure));
    }
    return undefined;
  }

  /** The key's only appearance: a read-only box to copy from, gone when dismissed. */
  showCreated(created) {
    const box = h("input", { class: "input mono", readonly: true, "aria-label": t("newKey"), id: "new-key-value" });
    box.value = created.key;
    const copy = h("button", { type: "button", class: "button", id: "copy-new-key", ...tr("copy") });
    copy.addEventListener("click", () => this.app.copy(box.value, copy));
    const done = h("button", { type: "button", class: "button primary", ...tr("keySaved") });
    done.addEventListener("click", () => {
      box.value = "";
      this.createdBox.replaceChildren();
      this.createdBox.hidden = true;
    });
    this.createdBox.replaceChildren(
      h("p", { class: "warning", role: "alert" }, icon("info"), h("span", tr("keyShownOnce", { name: created.name }))),
      h("div", { class: "copy-row" }, box, copy),
      h("div", { class: "row-buttons" }, done),
    );
    this.createdBox.hidden = false;
    box.focus();
    box.select();
  }

  async loadKeys() {
    try {
      const keys = (await api.get("/api/keys")).data;
      const rows = keys.map((key) => ({
        attrs: { "data-key-id": key.id, class: key.revoked_at ? "revoked" : null },
        cells: [
          h("span", { class: "key-name", text: key.name }),
          h("code", { class: "key-prefix", text: `${key.prefix}…` }),
          formatDate(key.created_at),
          key.last_used_at ? formatDate(key.last_used_at) : h("span", tr("never")),
          key.revoked_at
            ? h("span", { class: "badge badge-stopped", ...tr("revokedAt", { when: formatDate(key.revoked_at) }) })
            : h("span", { class: "badge badge-ok", ...tr("active") }),
          key.revoked_at ? "" : h("button", { type: "button", class: "button small danger", "data-action": "revoke", onclick: () => this.revoke(key), ...tr("revoke") }),
        ],
      }));
      this.keysBody.replaceChildren(table(["keyName", "keyPrefix", "created", "lastUsed", "status", "actions"], rows, { empty: "noKeys", className: "keys-table" }));
    } catch (error) {
      this.keysBody.replaceChildren(h("p", { class: "error-text", text: problem(error) }));
    }
  }

  async revoke(key) {
    const ok = await confirmDialog({ title: t("revokeTitle"), message: t("revokeConfirm", { name: key.name }), confirm: t("revoke"), danger: true });
    if (!ok) return;
    try {
      await api.delete(`/api/keys/${encodeURIComponent(key.id)}`);
      toast(t("keyRevoked"));
      await this.loadKeys();
    } catch (error) {
      toast(problem(error), "error");
    }
  }

  usageCard() {
    const since = input({ type: "date", name: "since", id: "usage-since" });
    since.addEventListener("change", () => this.loadUsage(since.value));
    return card("myUsage", field("since", since, "sinceHint"), this.usageBody);
  }

  async loadUsage(since = "") {
    try {
      const report = await api.get(`/api/usage${sinceQuery(since)}`);
      this.usageBody.replaceChildren(usageTable(report.data, { withUser: false }));
    } catch (error) {
      this.usageBody.replaceChildren(h("p", { class: "error-text", text: problem(error) }));
    }
  }
}

/** Requests and tokens, per user (`withUser`) or just the caller's. */
export function usageTable(totals, { withUser }) {
  const rows = totals.map((u) => ({
    attrs: { "data-user": u.username },
    cells: [
      ...(withUser ? [h("span", { class: "usage-user" }, h("span", { text: u.username }), u.user_id ? null : h("small", { class: "hint", ...tr("deletedUser") }))] : []),
      formatNumber(u.requests), formatNumber(u.prompt_tokens), formatNumber(u.cached_tokens), formatNumber(u.completion_tokens),
    ],
  }));
  const columns = ["requests", "promptTokens", "cachedTokens", "completionTokens"];
  return table(withUser ? ["username", ...columns] : columns, rows, { empty: "noUsage", className: "usage-table" });
}
