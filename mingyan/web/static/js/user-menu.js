// The user button in the top bar: who is signed in, and a menu to Account, Administration (for
// administrators) and Sign out. With no accounts (local mode) it stays hidden; the sidebar then
// shows a discreet "Create an administrator account" link, but only to a tab opened with the
// setup link (/setup?token=...).

import { h } from "./dom.js";
import { t, tr } from "./i18n.js";
import { icon } from "./icons.js";

export class UserMenu {
  /** `app`: {session, navigate(path), signOut()} */
  constructor(button, setupLink, app) {
    this.button = button;
    this.setupLink = setupLink;
    this.app = app;
    this.menu = null;
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      if (this.menu) this.close();
      else this.open();
    });
    document.addEventListener("click", (event) => this.menu && !this.menu.contains(event.target) && this.close());
    document.addEventListener("keydown", (event) => event.key === "Escape" && this.close());
    app.session.addEventListener("change", () => this.render());
  }

  render() {
    const { session } = this.app;
    this.close();
    const user = session.user;
    this.button.hidden = !user || session.via === "open";
    this.button.replaceChildren(icon("user"), h("span", { class: "user-name", text: user?.username ?? "" }));
    this.button.title = user ? `${user.username} · ${t(user.role === "admin" ? "roleAdmin" : "roleUser")}` : "";
    this.button.setAttribute("aria-label", t("userMenu"));
    this.setupLink.hidden = !(session.status.setup_required && !session.status.accounts && session.setupToken);
  }

  open() {
    const { session } = this.app;
    const entry = (key, action) =>
      h("button", { type: "button", role: "menuitem", class: "menu-item", "data-menu": key, onclick: () => (this.close(), action()), ...tr(key) });
    this.menu = h(
      "div",
      { class: "menu user-menu", role: "menu" },
      h("div", { class: "menu-label" }, h("strong", { text: session.user.username }), h("span", tr(session.user.role === "admin" ? "roleAdmin" : "roleUser"))),
      entry("account", () => this.app.navigate("/account")),
      session.isAdmin ? entry("administration", () => this.app.navigate("/admin")) : null,
      session.via === "session" ? entry("signOut", () => this.app.signOut()) : null,
    );
    this.button.after(this.menu);
    this.button.setAttribute("aria-expanded", "true");
    this.menu.querySelector("button").focus();
  }

  close() {
    this.menu?.remove();
    this.menu = null;
    this.button.setAttribute("aria-expanded", "false");
  }
}
