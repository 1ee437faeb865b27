import { defineProject, type UserWorkspaceConfig } from 'vitest/config';

/** Resolve workspace packages to their TypeScript sources, so tests need no build step. */
export const sourceConditions = ['@mesh/source'];

/** The vitest project every package uses: tests live in `test/**\/*.test.ts`. */
export function meshProject(name: string, extra: UserWorkspaceConfig['test'] = {}) {
  return defineProject({
    resolve: { conditions: [...sourceConditions, 'node', 'import', 'default'] },
    ssr: {
      resolve: {
        conditions: [...sourceConditions, 'node', 'import', 'default'],
        externalConditions: sourceConditions,
      },
    },
    test: {
      name,
      include: ['test/**/*.test.ts'],
      environment: 'node',
      testTimeout: 30_000,
      hookTimeout: 30_000,
      ...extra,
    },
  });
}
