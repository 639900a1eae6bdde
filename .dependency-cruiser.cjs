/**
 * Import boundaries, run by `npm run lint:imports` (part of `npm test`): no file imports
 * itself back through others, and no folder does, so each folder of src stays one step
 * of the data flow that the folders below it serve.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-file-circle',
      severity: 'error',
      comment: 'A circle of files is one module split badly: merge it, or move the shared shape below both.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycle',
      severity: 'error',
      scope: 'folder',
      comment: 'Two folders that import each other are one layer: move what both need to the lower one.',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
