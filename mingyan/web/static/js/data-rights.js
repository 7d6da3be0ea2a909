// The account page's "Delete my account" card: the user confirms with their password, and the
// server deletes the account with everything of theirs; the page then returns to sign-in.

import { api } from "./api.js";
import { h } from "./dom.js";
import { lang, tr } from "./i18n.js";
import { problem } from "./forms.js";

const TEXT = {
  en: {
    hint: "Your account is deleted with all your conversations, API keys and reports. Usage totals stay, without your account. This cannot be undone.",
    password: "Password", button: "Delete my account",
  },
  zh: {
    hint: "账户将与你的全部对话、API 密钥和举报一起删除；用量统计保留，但不再关联你的账户。此操作无法撤销。",
    password: "密码", button: "删除我的账户",
  },
};
const s = (key) => (lang().startsWith("zh") ? TEXT.zh : TEXT.en)[key];

export function deleteAccountCard() {
  const password = h("input", { type: "password", class: "input", id: "delete-account-password", autocomplete: "current-password", "aria-label": s("password") });
  const error = h("p", { class: "error-text form-error", role: "alert" });
  const button = h("button", { type: "submit", class: "button danger", id: "delete-account", text: s("button") });
  const form = h("form", { id: "delete-account-form" }, h("p", { class: "hint", text: s("hint") }),
    h("label", { class: "field" }, h("span", { text: s("password") }), password), error, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.post("/api/auth/delete-account", { password: password.value });
      location.assign("/");
    } catch (failure) {
      error.textContent = problem(failure);
    }
  });
  return h("section", { class: "card", id: "delete-account-card" }, h("h2", tr("deleteAccount")), form);
}
