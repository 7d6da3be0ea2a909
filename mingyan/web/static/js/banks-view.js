// The administration page's keyword-bank tab: each category's bank (version, shipped or edited),
// edited as one phrase per line; saving stores a new version, in force at once (and audited).

import { api } from "./api.js";
import { h } from "./dom.js";
import { lang } from "./i18n.js";
import { toast } from "./dialogs.js";
import { problem } from "./forms.js";

const TEXT = {
  en: { hint: "One phrase per line. Spacing, punctuation, width, case and traditional characters do not matter.", save: "Save a new version", saved: "Saved: version", version: "Version", shipped: "shipped", edited: "edited" },
  zh: { hint: "每行一个短语；空格、标点、全半角、大小写和繁体字不影响匹配。", save: "保存为新版本", saved: "已保存：版本", version: "版本", shipped: "内置", edited: "已修改" },
};
const s = (key) => (lang().startsWith("zh") ? TEXT.zh : TEXT.en)[key];

export class BanksTab {
  constructor() {
    this.list = h("div", { class: "bank-list" });
    this.root = h("div", { class: "tab-body", id: "admin-banks" }, h("p", { class: "hint", text: s("hint") }), this.list);
  }

  async load() {
    try {
      const { data } = await api.get("/api/admin/moderation/banks");
      this.list.replaceChildren(...data.map((bank) => this.bankForm(bank)));
    } catch (error) {
      this.list.replaceChildren(h("p", { class: "error-text", text: problem(error) }));
    }
  }

  bankForm(bank) {
    const phrases = h("textarea", { class: "input bank-phrases", name: bank.category, rows: 6 });
    phrases.value = bank.phrases.join("\n");
    const meta = h("span", { class: "bank-version", text: `${s("version")} ${bank.version} · ${s(bank.source)}` });
    const form = h("form", { class: "bank-form", "data-category": bank.category },
      h("h3", {}, h("span", { text: bank.category }), " ", meta), phrases,
      h("button", { type: "submit", class: "button primary", text: s("save") }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const lines = phrases.value.split("\n").map((line) => line.trim()).filter(Boolean);
        const saved = await api.put(`/api/admin/moderation/banks/${encodeURIComponent(bank.category)}`, { phrases: lines });
        meta.textContent = `${s("version")} ${saved.version} · ${s(saved.source)}`;
        toast(`${s("saved")} ${saved.version}`);
      } catch (error) {
        toast(problem(error), "error");
      }
    });
    return form;
  }
}
