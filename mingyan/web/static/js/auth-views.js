// The sign-in screen (/login) and the first-run setup (/setup?token=...): a card over the whole
// page, the chat hidden behind it. Passwords go from the form to the request and the fields are
// emptied at once; nothing is stored.

import { h } from "./dom.js";
import { t, tr, toggleLang } from "./i18n.js";
import { toggleTheme } from "./theme.js";
import { icon } from "./icons.js";
import { safeNext } from "./session.js";
import { errorLine, field, formatWait, newPasswordProblem, passwordInput, problem, usernameInput } from "./forms.js";

/** The full-page card the sign-in views draw in. */
export class AuthScreen {
  constructor(root, app) {
    this.root = root;
    this.app = app;
  }

  show(titleKey, ...content) {
    this.app.closeMenus?.();
    document.getElementById("app").hidden = true;
    const language = h("button", { type: "button", class: "button small", id: "auth-language", onclick: toggleLang, ...tr("otherLanguage") });
    const theme = h("button", { type: "button", class: "icon-button", id: "auth-theme", onclick: toggleTheme, "data-i18n-title": "toggleTheme", title: t("toggleTheme"), "aria-label": t("toggleTheme") }, icon("theme"));
    this.root.replaceChildren(
      h("div", { class: "auth-card" },
        h("div", { class: "auth-brand" }, "明言 ", h("span", { text: "mingyan" })),
        h("h1", { id: "auth-title", ...tr(titleKey) }),
        ...content,
        h("div", { class: "auth-footer" }, language, theme)),
    );
    this.root.hidden = false;
    document.title = `${t(titleKey)} · 明言 mingyan`;
  }

  hide() {
    this.root.hidden = true;
    this.root.replaceChildren();
    document.getElementById("app").hidden = false;
  }
}

export class LoginView {
  /** `app`: {auth: AuthScreen, session, navigate(path, options), signedIn()} */
  constructor(app) {
    this.app = app;
    this.notice = null; // why the user is here (i18n key), shown once
  }

  show() {
    const { session } = this.app;
    const next = safeNext(new URLSearchParams(location.search).get("next"));
    if (!session.status.accounts) return this.app.navigate(session.status.setup_required && session.setupToken ? "/setup" : "/", { replace: true });
    if (session.user) return this.app.navigate(next, { replace: true });
    const error = errorLine();
    const button = h("button", { type: "submit", class: "button primary wide", id: "login-submit", ...tr("signIn") });
    const username = usernameInput({ id: "login-username" });
    const form = h(
      "form",
      { class: "stack-form", id: "login-form", novalidate: true },
      this.notice ? h("p", { class: "notice", role: "status", id: "login-notice", ...tr(this.notice) }) : null,
      field("username", username),
      field("password", passwordInput("password", "current-password", { id: "login-password" })),
      error,
      button,
    );
    this.notice = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(form, button, error);
    });
    this.app.auth.show("signInTitle", form);
    username.focus();
    return undefined;
  }

  hide() {
    this.app.auth.hide();
  }

  async submit(form, button, error) {
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    form.elements.password.value = "";
    if (!username || !password) {
      error.show(t("enterBoth"));
      (username ? form.elements.password : form.elements.username).focus();
      return;
    }
    button.disabled = true;
    error.clear();
    try {
      await this.app.session.login(username, password);
    } catch (failure) {
      button.disabled = false;
      error.show(failure.status === 401 ? t("loginFailed") : failure.status === 429 ? t("loginThrottled", { wait: formatWait(failure.retryAfter) }) : problem(failure));
      form.elements.password.focus();
      return;
    }
    await this.app.signedIn();
  }
}

export class SetupView {
  /** `app`: {auth: AuthScreen, session, navigate(path, options), signedIn(path, welcome)} */
  constructor(app) {
    this.app = app;
  }

  show() {
    const { session } = this.app;
    const fromLink = new URLSearchParams(location.search).get("token");
    if (fromLink) {
      session.setupToken = fromLink;
      history.replaceState(null, "", "/setup"); // the token leaves the address bar and the history
    }
    if (session.status.accounts) return this.app.navigate(session.user ? "/" : "/login", { replace: true });
    if (!session.status.setup_required) return this.app.navigate("/", { replace: true });
    const error = errorLine();
    const token = passwordInput("token", "off", { id: "setup-token" });
    token.value = session.setupToken || "";
    const tokenField = field("setupToken", token, "setupTokenHint");
    tokenField.hidden = Boolean(token.value);
    const form = h(
      "form",
      { class: "stack-form", id: "setup-form", novalidate: true },
      h("p", { class: "auth-text", ...tr("setupText") }),
      h("p", { class: "auth-text", ...tr("setupAdopts") }),
      field("username", usernameInput({ id: "setup-username" })),
      field("password", passwordInput("password", "new-password", { id: "setup-password", minlength: 8 }), "passwordRule"),
      field("repeatPassword", passwordInput("repeat", "new-password", { id: "setup-repeat", minlength: 8 })),
      tokenField,
      error,
      h("button", { type: "submit", class: "button primary wide", id: "setup-submit", ...tr("createAdmin") }),
      h("a", { href: "/", class: "button link", "data-route": "/", ...tr("setupLater") }),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(form, error, tokenField);
    });
    this.app.auth.show("setupTitle", form);
    form.elements.username.focus();
    return undefined;
  }

  hide() {
    this.app.auth.hide();
  }

  async submit(form, error, tokenField) {
    const { username, password, repeat, token } = form.elements;
    const name = username.value.trim();
    const secret = password.value;
    const check = !name ? t("usernameMissing") : newPasswordProblem(secret, repeat.value);
    password.value = repeat.value = "";
    if (check) return error.show(check);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.clear();
    try {
      await this.app.session.setup(token.value.trim(), name, secret);
    } catch (failure) {
      button.disabled = false;
      if (failure.status === 403) {
        tokenField.hidden = false; // let the right token be pasted
        this.app.session.setupToken = null;
      }
      return error.show(failure.status === 403 ? t("setupTokenWrong") : problem(failure));
    }
    await this.app.signedIn("/", t("setupDone", { name }));
    return undefined;
  }
}
