// Package bench holds Agora's benchmark harnesses: committed transfers per
// second on a fresh single-node chain (Transfers), the built-in engine's
// prompt and decode speed and peak memory (Engine), and the requests per
// second and added latency of paid requests through gateway → miner
// (Gateway). Each harness returns a result struct with JSON tags and leaves
// printing to its caller; progress lines go to a writer the caller gives.
//
// It builds real nodes, gateways and miners, so it may import any library
// package of the module, but never cmd.
package bench
