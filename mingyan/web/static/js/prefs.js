// Preferences kept in this browser (localStorage), under one prefix. Never throws: a browser
// with storage disabled just forgets.

const PREFIX = "mingyan.";

export const prefs = {
  get(name, fallback = null) {
    try {
      const raw = localStorage.getItem(PREFIX + name);
      return raw == null ? fallback : JSON.parse(raw);
    } catch {
      return fallback;
    }
  },
  set(name, value) {
    try {
      if (value == null) localStorage.removeItem(PREFIX + name);
      else localStorage.setItem(PREFIX + name, JSON.stringify(value));
    } catch {
      /* storage full or disabled */
    }
  },
};
