// The settings dialog: the model, the open conversation's system prompt and sampling settings
// (PATCH /api/conversations/{id}; with no conversation open, those of the next new chat), saved
// personas, language, theme, and the server's API key (when it has one).

import { api, chatModels, paths } from "./api.js";
import { h, $ } from "./dom.js";
import { t, tr, langPref, setLang } from "./i18n.js";
import { themePref, applyTheme } from "./theme.js";
import { listPersonas, savePersona, deletePersona } from "./personas.js";
import { prefs } from "./prefs.js";
import { toast } from "./dialogs.js";

export const SAMPLING_FIELDS = [
  { name: "temperature", parse: parseFloat },
  { name: "top_p", parse: parseFloat },
  { name: "max_tokens", parse: (v) => parseInt(v, 10) },
  { name: "seed", parse: (v) => parseInt(v, 10) },
];

export class SettingsDialog {
  /** `app`: {chat, draft: {system_prompt, settings}, changed(conversation), onPersonas(), session} */
  constructor(dialog, app) {
    this.dialog = dialog;
    this.app = app;
    this.form = $("form", dialog);
    this.error = $("#settings-error", dialog);
    this.form.addEventListener("submit", (event) => {
      if (event.submitter?.value === "save") {
        event.preventDefault();
        this.save();
      }
    });
    $("#set-language", dialog).addEventListener("change", (event) => setLang(event.target.value));
    $("#set-theme", dialog).addEventListener("change", (event) => applyTheme(event.target.value));
    $("#persona-add", dialog).addEventListener("click", () => this.addPersona());
    $("#persona-list", dialog).addEventListener("click", (event) => {
      const id = event.target.closest("[data-persona-delete]")?.dataset.personaDelete;
      if (id) {
        deletePersona(id);
        this.renderPersonas();
        this.app.onPersonas();
      }
    });
  }

  field(name) {
    return $(`#set-${name.replace("_", "-")}`, this.dialog);
  }

  async open(section = null) {
    await this.app.chat.pending; // right after a reload, the conversation may still be on its way
    const conversation = this.app.chat.tree?.conversation ?? null;
    const source = conversation ?? this.app.draft;
    $("#settings-scope", this.dialog).dataset.i18n = conversation ? "scopeConversation" : "scopeNewChat";
    $("#settings-scope", this.dialog).textContent = t(conversation ? "scopeConversation" : "scopeNewChat");
    $("#set-system", this.dialog).value = source.system_prompt || "";
    for (const { name } of SAMPLING_FIELDS) this.field(name).value = source.settings?.[name] ?? "";
    $("#set-language", this.dialog).value = langPref();
    $("#set-theme", this.dialog).value = themePref();
    $("#set-api-key", this.dialog).value = prefs.get("apiKey") || "";
    // With accounts, signing in replaces the key: the field stays only for a key already kept.
    $("#settings-connection", this.dialog).hidden = Boolean(this.app.session?.status.accounts) && !prefs.get("apiKey");
    this.error.textContent = "";
    this.renderPersonas();
    this.loadModels(source.model);
    this.dialog.showModal();
    if (section) $(`#${section}`, this.dialog)?.scrollIntoView({ block: "start" });
  }

  /** The chat models served, `current` (the conversation's model or the next chat's) selected. */
  async loadModels(current) {
    const select = $("#set-model", this.dialog);
    try {
      const models = chatModels(await api.get("/v1/models"));
      select.replaceChildren(...models.map((m) => h("option", { value: m.id, text: m.id })));
      if (current && models.some((m) => m.id === current)) select.value = current;
      select.disabled = models.length < 2;
    } catch {
      /* shown by the API key field */
    }
  }

  /** The form's generation settings, merged over `base` (fields left empty are removed). */
  readSettings(base) {
    const settings = { ...(base || {}) };
    for (const { name, parse } of SAMPLING_FIELDS) {
      const raw = this.field(name).value.trim();
      if (raw === "") delete settings[name];
      else settings[name] = parse(raw);
    }
    return settings;
  }

  async save() {
    prefs.set("apiKey", $("#set-api-key", this.dialog).value.trim() || null);
    for (const { name } of SAMPLING_FIELDS) {
      if (!this.field(name).checkValidity()) {
        this.error.textContent = t("invalidField", { field: name });
        return;
      }
    }
    const tree = this.app.chat.tree;
    const systemPrompt = $("#set-system", this.dialog).value;
    const changes = {
      system_prompt: systemPrompt.trim() ? systemPrompt : null,
      settings: this.readSettings((tree ? tree.conversation : this.app.draft).settings),
    };
    const model = $("#set-model", this.dialog);
    if (!model.disabled && model.value) changes.model = model.value; // the next replies' model
    if (!tree) {
      Object.assign(this.app.draft, changes);
      this.dialog.close();
      return;
    }
    try {
      const conversation = await api.patch(paths.conversation(tree.id), changes);
      Object.assign(tree.conversation, conversation);
      this.app.changed(conversation);
      this.dialog.close();
      toast(t("settingsSaved"));
    } catch (error) {
      this.error.textContent = error.message;
    }
  }

  renderPersonas() {
    const personas = listPersonas();
    const list = $("#persona-list", this.dialog);
    list.replaceChildren(
      ...personas.map((p) =>
        h(
          "li",
          { class: "persona" },
          h("span", { class: "persona-name", text: p.name }),
          h("span", { class: "persona-prompt", text: p.prompt }),
          h("button", { type: "button", class: "button small danger", "data-persona-delete": p.id, ...tr("delete") }),
        ),
      ),
    );
    if (!personas.length) list.append(h("li", { class: "empty", ...tr("noPersonas") }));
  }

  addPersona() {
    const name = $("#persona-name", this.dialog);
    const prompt = $("#persona-prompt", this.dialog);
    if (!name.value.trim() || !prompt.value.trim()) {
      this.error.textContent = t("personaIncomplete");
      return;
    }
    savePersona(name.value.trim(), prompt.value);
    name.value = "";
    prompt.value = "";
    this.error.textContent = "";
    this.renderPersonas();
    this.app.onPersonas();
  }
}
