// Lets `node` run the TypeScript benchmarks with the same loader tap uses for the tests.
await import('@tapjs/typescript/import')
