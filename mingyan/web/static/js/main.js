// Wires the web chat together: i18n, theme, router, sidebar, thread, composer, settings.

import { api } from "./api.js";
import { $, copyText, h } from "./dom.js";
import { initI18n, t, tr, onLangChange, toggleLang } from "./i18n.js";
import { applyTheme, toggleTheme } from "./theme.js";
import { Router } from "./router.js";
import { ThreadView } from "./thread.js";
import { Chat } from "./chat.js";
import { Composer } from "./composer.js";
import { Sidebar } from "./sidebar.js";
import { SettingsDialog } from "./settings.js";
import { listPersonas, findPersona } from "./personas.js";
import { toast } from "./dialogs.js";
import { icon, applyIcons } from "./icons.js";

initI18n();
applyTheme();
applyIcons();

const showError = (error) => toast(error?.message || String(error), "error");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const app = {
  draft: { system_prompt: null, settings: {} }, // the next new chat's settings
  open: openConversation,
  current: () => chat.id,
  changed,
  closed,
  onPersonas: fillPersonas,
};

const thread = new ThreadView($("#thread"), $("#scroller"), {
  copy: async (text, button) => (await copyText(text)) && flash(button),
  edit: (id, text) => chat.edit(id, text),
  regenerate: (id) => chat.regenerate(id),
  branch: (id, step) => chat.branch(id, step).catch(showError),
});
const chat = new Chat(thread);
app.chat = chat;
const composer = new Composer($("#composer"), { onSend: send, onStop: () => chat.stop().catch(showError) });
const sidebar = new Sidebar($("#sidebar"), app);
const settings = new SettingsDialog($("#settings-dialog"), app);
const router = new Router();

const chatView = {
  async show({ id } = {}) {
    closeSidebar();
    if (!id) {
      chat.close();
      composer.focus();
      return;
    }
    try {
      await chat.open(id);
    } catch (error) {
      showError(error);
      if (error.status === 404) router.navigate("/", { replace: true });
    }
  },
};
router.add("/", chatView).add("/c/:id", chatView).fallback({ show: () => router.navigate("/", { replace: true }) });

async function send(text) {
  try {
    if (!chat.tree) {
      const persona = findPersona($("#persona-select").value);
      const conversation = await chat.create({
        system_prompt: persona ? persona.prompt : app.draft.system_prompt,
        settings: app.draft.settings,
      });
      router.navigate(`/c/${encodeURIComponent(conversation.id)}`, { silent: true });
      sidebar.refresh();
    }
    return await chat.send(text);
  } catch (error) {
    showError(error);
    return false;
  }
}

async function openConversation(id, messageId = null) {
  await router.navigate(`/c/${encodeURIComponent(id)}`);
  if (!messageId || chat.id !== id || !chat.tree.get(messageId)) return;
  try {
    if (!chat.tree.path().includes(messageId)) await chat.switchTo(messageId);
    thread.reveal(messageId);
  } catch (error) {
    showError(error);
  }
}

function changed(conversation) {
  if (chat.tree?.id === conversation.id) {
    Object.assign(chat.tree.conversation, conversation);
    showTitle();
  }
  sidebar.updated(conversation);
}

function closed(id) {
  if (chat.id === id) router.navigate("/");
}

function showTitle() {
  const conversation = chat.tree?.conversation;
  const title = $("#conversation-title");
  if (conversation?.title) {
    delete title.dataset.i18n;
    title.textContent = conversation.title;
  } else {
    title.dataset.i18n = conversation ? "untitled" : "newChat";
    title.textContent = t(title.dataset.i18n);
  }
  document.title = `${title.textContent} · 明言 mingyan`;
}

function showWelcome() {
  $("#welcome").hidden = Boolean(chat.tree && (chat.tree.messages.size || chat.busy));
}

/** A first reply gets its title from the model shortly after it ends: pick it up. */
async function awaitTitle(id) {
  for (const wait of [700, 1500, 3000, 6000]) {
    await sleep(wait);
    if (chat.id !== id || chat.tree.conversation.title) return;
    await sidebar.refresh();
    const found = sidebar.find(id);
    if (found?.title) return changed(found);
  }
  return undefined;
}

function fillPersonas() {
  const select = $("#persona-select");
  const chosen = select.value;
  select.replaceChildren(
    h("option", { value: "", ...tr("personaNone") }),
    ...listPersonas().map((p) => h("option", { value: p.id, text: p.name })),
  );
  select.value = findPersona(chosen) ? chosen : "";
}

/** Show a check mark on a button for a moment (copied). */
function flash(button) {
  const before = [...button.childNodes];
  button.replaceChildren(icon("check"));
  button.classList.add("flashed");
  setTimeout(() => {
    button.replaceChildren(...before);
    button.classList.remove("flashed");
  }, 1200);
}

function openSidebar() {
  $("#app").classList.add("sidebar-open");
}

function closeSidebar() {
  $("#app").classList.remove("sidebar-open");
}

async function importFile(file) {
  try {
    const result = await api.upload("/api/import", file);
    const skipped = Object.values(result.skipped || {}).reduce((a, b) => a + b, 0);
    toast(t("imported", { n: result.conversation_ids.length, m: result.message_count, skipped }));
    await sidebar.refresh();
  } catch (error) {
    toast(`${t("importFailed")}: ${error.message}`, "error");
  }
}

chat.addEventListener("conversation", () => {
  showTitle();
  showWelcome();
  sidebar.markActive(chat.id);
});
chat.addEventListener("busy", () => {
  composer.setBusy(chat.busy);
  $("#app").classList.toggle("busy", chat.busy);
  showWelcome();
});
chat.addEventListener("error", (event) => showError(event.detail));
chat.addEventListener("finished", () => {
  sidebar.refresh();
  if (chat.tree && !chat.tree.conversation.title) awaitTitle(chat.id);
});
thread.onStickChange = (stick) => ($("#scroll-bottom").hidden = stick);

$("#new-chat").addEventListener("click", () => router.navigate("/"));
$(".brand").addEventListener("click", (event) => {
  event.preventDefault();
  router.navigate("/");
});
$("#open-settings").addEventListener("click", () => settings.open());
$("#conversation-settings").addEventListener("click", () => settings.open("settings-conversation"));
$("#toggle-theme").addEventListener("click", toggleTheme);
$("#toggle-language").addEventListener("click", toggleLang);
$("#open-sidebar").addEventListener("click", openSidebar);
$("#close-sidebar").addEventListener("click", closeSidebar);
$("#scrim").addEventListener("click", closeSidebar);
$("#scroll-bottom").addEventListener("click", () => thread.scrollToBottom());
$("#export-all").addEventListener("click", () => api.download("/api/export", "mingyan-export.json").catch(showError));
$("#import-button").addEventListener("click", () => $("#import-file").click());
$("#import-file").addEventListener("change", (event) => {
  const [file] = event.target.files;
  event.target.value = "";
  if (file) importFile(file);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && chat.busy && document.activeElement === $("#composer-input")) chat.stop().catch(showError);
});
let askedForKey = false;
window.addEventListener("mingyan:unauthorized", () => {
  if (askedForKey) return;
  askedForKey = true;
  toast(t("unauthorized"), "error");
  settings.open("settings-connection");
});
onLangChange(() => showTitle());

fillPersonas();
sidebar.refresh();
router.resolve();
api.get("/v1/models").then((models) => ($("#model-name").textContent = models.data.map((m) => m.id).join(", ")), () => {});
document.documentElement.dataset.ready = "true";
