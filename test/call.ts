// the benchmarks' load generators, shared with the tests
export * from '../bench/lib/call.js';
