// The users tab of /admin: create a user, change role, disable or enable, reset a password, edit the
// quota (the user's own values against what applies), delete after typing the username. Refusals
// (the last administrator, a taken name) are shown in the tab.

import { api } from "./api.js";
import { h } from "./dom.js";
import { t, tr } from "./i18n.js";
import { confirmDialog, formDialog, toast } from "./dialogs.js";
import { roleLabel } from "./account-view.js";
import {
  LIMIT_FIELDS, errorLine, field, formatDate, formatNumber, input, limitInput, newPasswordProblem, passwordInput,
  problem, readLimits, table, usernameInput,
} from "./forms.js";

const userPath = (id, rest = "") => `/api/admin/users/${encodeURIComponent(id)}${rest}`;

export class UsersTab {
  /** `session`: the signed-in administrator (their own row is marked). */
  constructor(session) {
    this.session = session;
    this.error = errorLine();
    this.list = h("div", { class: "users-list" });
    this.root = h("div", { class: "tab-body", id: "admin-users" }, this.createForm(), this.error, this.list);
  }

  createForm() {
    const error = errorLine();
    const role = h("select", { class: "input", name: "role" },
      h("option", { value: "user", ...tr("roleUser") }), h("option", { value: "admin", ...tr("roleAdmin") }));
    const form = h(
      "form",
      { class: "inline-form", id: "create-user-form", novalidate: true },
      field("username", usernameInput({ autocomplete: "off" })),
      field("password", passwordInput("password", "new-password", { minlength: 8 })),
      field("role", role),
      h("button", { type: "submit", class: "button primary", ...tr("createUser") }),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const username = form.elements.username.value.trim();
      const password = form.elements.password.value;
      form.elements.password.value = "";
      const check = !username ? t("usernameMissing") : newPasswordProblem(password, password);
      if (check) return error.show(check);
      error.clear();
      try {
        await api.post("/api/admin/users", { username, password, role: role.value });
        form.reset();
        toast(t("userCreated", { name: username }));
        await this.load();
      } catch (failure) {
        error.show(problem(failure));
      }
      return undefined;
    });
    return h("div", { class: "create-user" }, h("h3", tr("createUser")), form, error);
  }

  async load() {
    try {
      const users = (await api.get("/api/admin/users")).data;
      this.list.replaceChildren(table(["username", "role", "status", "created", "actions"], users.map((u) => this.row(u)), { className: "users-table" }));
    } catch (error) {
      this.error.show(problem(error));
    }
  }

  row(user) {
    const me = user.id === this.session.user?.id;
    const role = h("select", { class: "input small", "data-action": "role", "aria-label": t("role") },
      h("option", { value: "user", ...tr("roleUser") }), h("option", { value: "admin", ...tr("roleAdmin") }));
    role.value = user.role;
    role.addEventListener("change", () => this.update(user, { role: role.value }, () => (role.value = user.role)));
    const action = (key, handler, danger = false) =>
      h("button", { type: "button", class: `button small${danger ? " danger" : ""}`, "data-action": key, onclick: handler, ...tr(key) });
    return {
      attrs: { "data-user-id": user.id, "data-username": user.username, class: user.disabled ? "disabled" : null },
      cells: [
        h("span", { class: "user-name" }, h("span", { text: user.username }), me ? h("small", { class: "hint", ...tr("you") }) : null),
        role,
        h("span", { class: `badge ${user.disabled ? "badge-error" : "badge-ok"}`, ...tr(user.disabled ? "disabled" : "enabled") }),
        formatDate(user.created_at),
        h("div", { class: "row-buttons" },
          user.disabled ? action("enable", () => this.update(user, { disabled: false })) : action("disable", () => this.disable(user)),
          action("resetPassword", () => this.resetPassword(user)),
          action("quota", () => this.editQuota(user)),
          action("delete", () => this.remove(user), true)),
      ],
    };
  }

  /** PATCH the user; on a refusal show why and call `undo`. */
  async update(user, changes, undo = null) {
    this.error.clear();
    try {
      await api.patch(userPath(user.id), changes);
      toast(t("userUpdated", { name: user.username }));
    } catch (error) {
      this.error.show(problem(error));
      undo?.();
    }
    await this.load();
  }

  async disable(user) {
    const ok = await confirmDialog({ title: t("disableTitle", { name: user.username }), message: t("disableConfirm"), confirm: t("disable"), danger: true });
    if (ok) await this.update(user, { disabled: true });
  }

  async resetPassword(user) {
    const fresh = passwordInput("new", "new-password", { minlength: 8, "aria-label": t("newPassword") });
    const repeat = passwordInput("repeat", "new-password", { minlength: 8, "aria-label": t("repeatPassword") });
    const body = h("div", { class: "stack-form" },
      h("p", tr("resetPasswordText", { name: user.username })),
      field("newPassword", fresh, "passwordRule"), field("repeatPassword", repeat));
    const ok = await formDialog({ title: t("resetPassword"), body, confirm: t("save"), check: () => !newPasswordProblem(fresh.value, repeat.value) });
    const password = fresh.value;
    fresh.value = repeat.value = "";
    if (ok) await this.update(user, { password });
  }

  async editQuota(user) {
    this.error.clear();
    let quota;
    try {
      quota = await api.get(userPath(user.id, "/quota"));
    } catch (error) {
      return this.error.show(problem(error));
    }
    const form = h("div", { class: "quota-form" },
      h("p", { class: "hint", ...tr("quotaHint") }),
      h("div", { class: "quota-grid" },
        h("span"), h("span", { class: "quota-head", ...tr("quotaOwn") }), h("span", { class: "quota-head", ...tr("quotaEffective") }),
        LIMIT_FIELDS.flatMap(({ name, label }) => {
          const box = limitInput(name);
          box.value = quota.overrides[name] ?? "";
          box.setAttribute("aria-label", t(label));
          const applies = quota.effective[name];
          return [h("span", tr(label)), box, h("span", { class: "quota-effective", "data-limit": name, ...(applies == null ? tr("noLimit") : { text: formatNumber(applies) }) })];
        })));
    const valid = () => [...form.querySelectorAll("input")].every((box) => box.checkValidity());
    if (!(await formDialog({ title: t("quotaTitle", { name: user.username }), body: form, confirm: t("save"), check: valid }))) return undefined;
    try {
      await api.put(userPath(user.id, "/quota"), readLimits(form));
      toast(t("quotaSaved", { name: user.username }));
    } catch (error) {
      this.error.show(problem(error));
    }
    return undefined;
  }

  async remove(user) {
    const typed = input({ type: "text", name: "confirm", autocomplete: "off", spellcheck: "false", "aria-label": t("typeUsername") });
    const body = h("div", { class: "stack-form" },
      h("p", tr("deleteUserText", { name: user.username })),
      field("typeUsername", typed));
    const ok = await formDialog({ title: t("deleteUserTitle"), body, confirm: t("delete"), danger: true, check: () => typed.value === user.username });
    if (!ok || typed.value !== user.username) return;
    this.error.clear();
    try {
      await api.delete(userPath(user.id));
      toast(t("userDeleted", { name: user.username }));
    } catch (error) {
      this.error.show(problem(error));
    }
    await this.load();
  }
}
