// Lint for every TypeScript and JavaScript file of the repository (`npm run lint`, no warnings
// allowed). typescript-eslint's recommended rules, plus the type-aware rules that catch real bugs
// in async engine code (a promise nobody awaits, a promise where a boolean was meant); formatting
// is prettier's job, so eslint-config-prettier turns off every rule that would argue with it.
import js from "@eslint/js";
import prettier from "eslint-config-prettier";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: ["dist/", "build/", "build-*/", ".cache/", "node_modules/", "runs/", "examples/**/out/"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { project: "./tsconfig.test.json", tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
    },
  },
  {
    files: ["**/*.{js,mjs,cjs}"],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      // A user-facing error re-thrown from a catch quotes the caught error's message in its own text
      // (what went wrong, then what to do); a `cause` chain would repeat it.
      "preserve-caught-error": "off",
    },
  },
  prettier,
);
