// Light and dark themes. "system" (the default) follows prefers-color-scheme in CSS alone, so the
// page never flashes the wrong theme before this module runs.

import { prefs } from "./prefs.js";

export const THEMES = ["system", "light", "dark"];

export function themePref() {
  const saved = prefs.get("theme", "system");
  return THEMES.includes(saved) ? saved : "system";
}

export function applyTheme(pref = themePref()) {
  prefs.set("theme", pref === "system" ? null : pref);
  if (pref === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = pref;
}

export function effectiveTheme() {
  const pref = themePref();
  if (pref !== "system") return pref;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

/** Switch between light and dark (leaving "system"). */
export function toggleTheme() {
  applyTheme(effectiveTheme() === "dark" ? "light" : "dark");
}
