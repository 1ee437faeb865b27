import { defineConfig } from 'vitest/config';

// One vitest project per workspace package; each folder carries its own vitest.config.ts
// built with `meshProject()` from vitest.shared.ts.
export default defineConfig({
  test: {
    projects: ['{packages/*,examples/*,bench,docs}/vitest.config.ts'],
  },
});
