// Wires the web chat together: i18n, theme, router, sidebar, thread, composer, settings, and the
// account views (sign-in, first-run setup, account, administration) with the start-up flow:
// GET /api/auth/status and /api/auth/me decide between the chat (signed in, or no accounts: local
// mode) and the sign-in view; any later 401 comes back to sign-in, keeping the composer's text.

import { api, chatModels } from "./api.js";
import { $, copyText, h } from "./dom.js";
import { initI18n, t, tr, onLangChange, toggleLang } from "./i18n.js";
import { applyTheme, toggleTheme } from "./theme.js";
import { Router } from "./router.js";
import { ThreadView } from "./thread.js";
import { Chat } from "./chat.js";
import { Composer } from "./composer.js";
import { ToolSwitch } from "./tools-view.js";
import { AttachmentTray } from "./attachments.js";
import { Sidebar } from "./sidebar.js";
import { SettingsDialog } from "./settings.js";
import { listPersonas, findPersona } from "./personas.js";
import { toast } from "./dialogs.js";
import { icon, applyIcons } from "./icons.js";
import { Session, loginPath, safeNext } from "./session.js";
import { AuthScreen, LoginView, SetupView } from "./auth-views.js";
import { AccountView } from "./account-view.js";
import { AdminView } from "./admin-view.js";
import { UserMenu } from "./user-menu.js";
import { loadLabelOptions } from "./ai-label.js";

initI18n();
applyTheme();
applyIcons();

// A 401 is not shown as an error: the page goes to sign-in (or asks for the API key) instead.
const showError = (error) => error?.status !== 401 && toast(error?.message || String(error), "error");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const app = {
  draft: { system_prompt: null, settings: {}, model: null }, // the next new chat's settings (model: null, the first)
  open: openConversation,
  current: () => chat.id,
  changed,
  closed,
  onPersonas: fillPersonas,
  session: new Session(),
};
const session = app.session;

const copy = async (text, button) => (await copyText(text)) && flash(button);
const thread = new ThreadView($("#thread"), $("#scroller"), {
  copy,
  edit: (id, text) => chat.edit(id, text),
  regenerate: (id) => chat.regenerate(id),
  branch: (id, step) => chat.branch(id, step).catch(showError),
});
const chat = new Chat(thread);
app.chat = chat;
chat.tools = new ToolSwitch($("#tool-switch"), () => chat.tree?.conversation ?? null, showError);
const composer = new Composer($("#composer"), { onSend: send, onStop: () => chat.stop().catch(showError) });
chat.attachments = new AttachmentTray($("#composer"), { onError: showError });
const sidebar = new Sidebar($("#sidebar"), app);
const settings = new SettingsDialog($("#settings-dialog"), app);
const router = new Router();
const navigate = (path, options) => router.navigate(path, options);

/** The main area shows the chat, or a page (account, administration) in its place. */
const frame = {
  open(titleKey) {
    chat.close();
    closeSidebar();
    $("#app").dataset.screen = "page";
    const title = $("#conversation-title");
    title.dataset.i18n = titleKey;
    title.textContent = t(titleKey);
    document.title = `${title.textContent} · 明言 mingyan`;
    const inner = h("div", { class: "page-inner" });
    $("#page").replaceChildren(inner);
    $("#page").hidden = false;
    $("#page").scrollTop = 0;
    return inner;
  },
  close() {
    $("#page").hidden = true;
    $("#page").replaceChildren();
    $("#app").dataset.screen = "chat";
  },
};
const accounts = { session, frame, navigate, signedIn, signOut, copy, auth: null };
accounts.auth = new AuthScreen($("#auth"), { closeMenus: () => userMenu.close() });
const loginView = new LoginView(accounts);
const setupView = new SetupView(accounts);
const userMenu = new UserMenu($("#user-button"), $("#setup-link"), accounts);

/** A view that needs a signed-in user when the server has accounts. */
function signedInOnly(view) {
  return {
    show: (params) => (session.needsLogin ? navigate(loginPath(), { replace: true }) : view.show(params)),
    hide: () => view.hide?.(),
  };
}

const pageView = (view) => signedInOnly({ show: () => view.show(), hide: () => frame.close() });

const chatView = signedInOnly({
  async show({ id } = {}) {
    frame.close();
    closeSidebar();
    if (!id) {
      chat.close();
      // Into the message box, unless the user is typing elsewhere already (e.g. the search box).
      if (!document.activeElement?.matches("input, textarea, select")) composer.focus();
      return;
    }
    try {
      await chat.open(id);
    } catch (error) {
      showError(error);
      if (error.status === 404) router.navigate("/", { replace: true });
    }
  },
});
router
  .add("/", chatView)
  .add("/c/:id", chatView)
  .add("/login", loginView)
  .add("/setup", setupView)
  .add("/account", pageView(new AccountView(accounts)))
  .add("/admin", pageView(new AdminView(accounts)))
  .fallback({ show: () => router.navigate("/", { replace: true }) });

/** After signing in (or the first-run setup): the chat of this user, back where they were, with
 * the text they had typed. */
async function signedIn(path = null, welcome = null) {
  const next = path ?? safeNext(new URLSearchParams(location.search).get("next"));
  if (welcome) toast(welcome);
  sidebar.refresh();
  loadModels();
  loadLabelOptions();
  await router.navigate(next, { replace: true });
  const draft = session.takeDraft();
  if (draft && !composer.text().trim()) composer.setText(draft);
}

/** Nothing of the previous user stays on the page. */
function leaveSignedIn() {
  chat.close();
  sidebar.clear();
  $("#model-name").textContent = "";
}

async function signOut() {
  try {
    await session.logout();
  } catch (error) {
    showError(error);
  }
  leaveSignedIn();
  await router.navigate("/login");
}

/** A 401: with accounts, the sign-in ended (signed out elsewhere, expired, disabled): sign in again,
 * keeping the composer's text. Without accounts the server wants its API key (Settings). */
let recovering = false;
let askedForKey = false;
async function unauthorized() {
  if (recovering || router.current === loginView || router.current === setupView) return;
  recovering = true;
  try {
    const status = await session.checkStatus().catch(() => session.status);
    if (status.accounts) {
      session.saveDraft(composer.text());
      session.forget();
      leaveSignedIn();
      loginView.notice = "sessionEnded";
      await router.navigate(loginPath());
    } else if (!askedForKey) {
      askedForKey = true;
      toast(t("unauthorized"), "error");
      settings.open("settings-connection");
    }
  } finally {
    recovering = false;
  }
}

async function send(text) {
  try {
    if (!chat.tree) {
      const persona = findPersona($("#persona-select").value);
      const conversation = await chat.create({
        system_prompt: persona ? persona.prompt : app.draft.system_prompt,
        settings: chat.tools.withChoice(app.draft.settings),
        model: app.draft.model,
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
  if ($("#app").dataset.screen === "page") return;
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
  chat.tools.show();
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
// Settings show the open conversation's values: wait until start-up has routed to it.
$("#open-settings").addEventListener("click", () => started.then(() => settings.open()));
$("#conversation-settings").addEventListener("click", () => started.then(() => settings.open("settings-conversation")));
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
window.addEventListener("mingyan:unauthorized", unauthorized);
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-route]");
  if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  router.navigate(link.dataset.route);
});
onLangChange(() => {
  showTitle();
  userMenu.render();
});

function loadModels() {
  chat.tools.load();
  api.get("/v1/models").then((models) => ($("#model-name").textContent = chatModels(models).map((m) => m.id).join(", ")), () => {});
}

async function start() {
  fillPersonas();
  try {
    await session.refresh();
  } catch (error) {
    showError(error);
  }
  userMenu.render();
  if (!session.needsLogin) {
    sidebar.refresh();
    loadModels();
    loadLabelOptions();
  }
  router.resolve();
  document.documentElement.dataset.ready = "true";
}

const started = start();
