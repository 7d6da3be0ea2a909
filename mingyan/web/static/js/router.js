// A small client-side router over the History API. Each route names a view with show(params)
// and, optionally, hide(); the server answers index.html for every route path (mingyan/api/web.py,
// CLIENT_ROUTES): the chat ("/", "/c/:id"), sign-in ("/login", "/setup"), "/account" and "/admin".
// Views read their query string (e.g. /login?next=...) from `location.search` themselves.

export class Router {
  constructor() {
    this.routes = [];
    this.current = null;
    window.addEventListener("popstate", () => this.resolve());
  }

  /** Register `view` for a pattern such as "/c/:id". */
  add(pattern, view) {
    const keys = [];
    const source = pattern.replace(/:(\w+)/g, (_, key) => {
      keys.push(key);
      return "([^/]+)";
    });
    this.routes.push({ regex: new RegExp(`^${source}/?$`), keys, view });
    return this;
  }

  fallback(view) {
    this.notFound = view;
    return this;
  }

  /** Go to `path` (a query string may follow). With `silent`, only the address changes (the view
   * already shows it). */
  navigate(path, { replace = false, silent = false } = {}) {
    if (path !== location.pathname + location.search) history[replace ? "replaceState" : "pushState"](null, "", path);
    return silent ? null : this.resolve();
  }

  resolve() {
    const path = location.pathname;
    for (const route of this.routes) {
      const match = route.regex.exec(path);
      if (match) {
        const params = Object.fromEntries(route.keys.map((key, i) => [key, decodeURIComponent(match[i + 1])]));
        return this.show(route.view, params);
      }
    }
    return this.notFound ? this.show(this.notFound, { path }) : null;
  }

  show(view, params) {
    if (this.current && this.current !== view) this.current.hide?.();
    this.current = view;
    return view.show(params);
  }
}
