// eslint.config.mjs - the lint rules for the console's JavaScript
// (console/*.js, browser ES modules) and the browser tests
// (tests/browser/*.mjs, Node ES modules), run by `make lint-js`: ESLint's
// recommended rules and each environment's globals, nothing more. make
// copies this file next to the installed eslint (build/npm/browser/), so
// that its imports resolve there; file patterns are relative to the
// directory make runs in, the repository's root.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  { files: ["console/*.js"], languageOptions: { sourceType: "module", globals: globals.browser } },
  { files: ["tests/browser/*.mjs"], languageOptions: { sourceType: "module", globals: globals.node } },
];
