// Saved personas (a name and a system prompt), kept in this browser for now; a new chat can
// start from one.

import { prefs } from "./prefs.js";

const KEY = "personas";

export function listPersonas() {
  const saved = prefs.get(KEY, []);
  return Array.isArray(saved) ? saved.filter((p) => p && typeof p.name === "string") : [];
}

export function savePersona(name, prompt) {
  const persona = { id: `p${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`, name, prompt };
  prefs.set(KEY, [...listPersonas(), persona]);
  return persona;
}

export function deletePersona(id) {
  prefs.set(KEY, listPersonas().filter((p) => p.id !== id));
}

export function findPersona(id) {
  return listPersonas().find((p) => p.id === id) || null;
}
