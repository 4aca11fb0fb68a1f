package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/bench"
	"github.com/agoranet/agora/engine"
	"github.com/agoranet/agora/miner"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency of Agora's parts on this machine",
	}
	cmd.AddCommand(newBenchTransfersCmd(), newBenchEngineCmd(), newBenchGatewayCmd())
	cmd.AddCommand(newBenchJoinCmd())
	return cmd
}

func newBenchTransfersCmd() *cobra.Command {
	var (
		accounts, perAccount, conns, validators int
		blockTime                               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "transfers",
		Short: "Drive a fresh local node with signed transfers; print committed tx/s and commit latency",
		Long: `transfers starts a single-node chain in a temporary directory with --accounts
funded accounts, pre-signs --per-account transfers for each, sends them with
broadcast_tx_sync over --conns concurrent RPC connections, and watches blocks
to measure committed transfers per second and send-to-commit latency.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if accounts < 1 || perAccount < 1 || conns < 1 {
				return usageErrorf("--accounts, --per-account and --conns must be positive")
			}
			if validators < 1 || validators > 16 {
				return usageErrorf("--validators must be in 1..16")
			}
			cfg := bench.TransfersConfig{Accounts: accounts, PerAccount: perAccount,
				Conns: conns, BlockTime: blockTime, Progress: cmd.ErrOrStderr()}
			single, err := bench.Transfers(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			runs := []*bench.TransfersResult{single}
			if validators > 1 {
				if cfg.Exe, err = os.Executable(); err != nil {
					return fmt.Errorf("find the agora binary: %w", err)
				}
				cfg.Validators = validators
				multi, err := bench.Transfers(cmd.Context(), cfg)
				if err != nil {
					return fmt.Errorf("%d-chain-validator run: %w", validators, err)
				}
				runs = append(runs, multi)
			}
			var out any = single
			if len(runs) > 1 {
				out = map[string]any{"single_node": single, "testnet": runs[1]}
			}
			return printResult(cmd, out, func(w io.Writer) error {
				for _, res := range runs {
					where := "one in-process node"
					if res.Validators > 1 {
						where = fmt.Sprintf("%d chain validator processes, sent through all their RPCs", res.Validators)
					}
					fmt.Fprintf(w, "%s\naccounts %d, connections %d, block time %d ms\nsent %d, committed %d, rejected %d in %.1f s over %d blocks (max %d txs/block)\ncommitted transfers/s  %.0f\ncommit latency         p50 %.0f ms, p99 %.0f ms\n",
						where, res.Accounts, res.Connections, res.BlockTimeMs, res.Sent, res.Committed, res.Rejected, res.Seconds, res.Blocks, res.MaxBlockTxs,
						res.TxPerSecond, res.P50Millis, res.P99Millis)
					if res.FirstRejects != "" {
						fmt.Fprintf(w, "first rejection: %s\n", res.FirstRejects)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&accounts, "accounts", 2000, "funded sender accounts")
	cmd.Flags().IntVar(&perAccount, "per-account", 30, "transfers each account sends")
	cmd.Flags().IntVar(&conns, "conns", 32, "concurrent RPC connections")
	cmd.Flags().DurationVar(&blockTime, "block-time", time.Second, "block time of the benchmark chain")
	cmd.Flags().IntVar(&validators, "validators", 1, "also run it on a testnet of this many chain validator processes (2..16) and print both")
	return cmd
}

func newBenchGatewayCmd() *cobra.Command {
	var conc int
	var dur time.Duration
	var stream, free bool
	cmd := &cobra.Command{
		Use:   "gateway [--stream] [--concurrency 4] [--duration 10s]",
		Short: "Requests/s and added latency of paid requests through gateway → miner (openai backend) → an instant upstream, against the upstream alone",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if conc < 1 || dur <= 0 {
				return usageErrorf("--concurrency and --duration must be positive")
			}
			res, err := bench.Gateway(cmd.Context(), bench.GatewayConfig{Concurrency: conc, Duration: dur, Stream: stream, Free: free,
				Progress: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			return printResult(cmd, res, func(w io.Writer) error {
				paid := "paid (a voucher verified and fsynced per request)"
				if free {
					paid = "free (no payments)"
				}
				_, err := fmt.Fprintf(w, "%s %s requests, %d concurrent, %.0f s each\ndirect       %7.0f req/s  p50 %.2f ms  p99 %.2f ms\nvia gateway  %7.0f req/s  p50 %.2f ms  p99 %.2f ms\nadded        p50 %.2f ms  p99 %.2f ms (gateway + signed miner hop + receipt checks)\n",
					res.Mode, paid, conc, dur.Seconds(), res.Direct.RPS, res.Direct.P50ms, res.Direct.P99ms, res.ViaGateway.RPS, res.ViaGateway.P50ms, res.ViaGateway.P99ms, res.AddedP50ms, res.AddedP99ms)
				return err
			})
		},
	}
	cmd.Flags().IntVar(&conc, "concurrency", 4, "concurrent clients")
	cmd.Flags().DurationVar(&dur, "duration", 10*time.Second, "how long to measure each path")
	cmd.Flags().BoolVar(&stream, "stream", false, "measure streamed requests")
	cmd.Flags().BoolVar(&free, "free", false, "serve without payments, to see what the voucher check and ledger cost")
	return cmd
}

func newBenchEngineCmd() *cobra.Command {
	var shape, quant, modelPath, llamaDir string
	var promptLen, genLen, threads int
	var concurrent []int
	cmd := &cobra.Command{
		Use:   "engine [--shape smollm2-135m --quant q8_0 | --model F.gguf]",
		Short: "Measure the built-in engine's prompt and decode tokens/s and peak memory",
		Long: `Measures the built-in engine on a model: prompt processing (batched) and
decode tokens per second, and the process's peak resident memory.

Without --model it generates a random-weight model of --shape into a
temporary directory first (in a child process, so the generator's memory does
not count toward the peak). Decoding runs greedily for exactly --tokens
tokens (end-of-sequence tokens do not stop it).

With --llamacpp DIR it then runs llama.cpp's CPU backend on the same file,
threads and token counts, through the npm package node-llama-cpp installed
in DIR (cd DIR && npm install node-llama-cpp), and prints both and agora's
ratio. Without node or the package it says so and prints agora's figures.

With --concurrent 1,4,16 it instead measures the miner's continuous
batching: for each count N, N streams of --prompt and --tokens tokens run at
once through the builtin backend's batcher (one forward pass per step for
all of them) and, for comparison, as N separate concurrent generations. It
prints completion tokens/s summed over the N streams, end to end (each
stream's own prefill included), and the batched/separate ratio.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if promptLen < 1 || genLen < 2 {
				return usageErrorf("--prompt must be at least 1 and --tokens at least 2")
			}
			if threads > 0 {
				runtime.GOMAXPROCS(threads)
			}
			for _, n := range concurrent {
				if n < 1 || n > 1024 {
					return usageErrorf("--concurrent %d: stream counts from 1 to 1024", n)
				}
			}
			if len(concurrent) > 0 && llamaDir != "" {
				return usageErrorf("--concurrent and --llamacpp measure different things; pass one")
			}
			path := modelPath
			if path == "" {
				dir, err := os.MkdirTemp("", "agora-bench-engine-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				if path, err = benchModel(cmd, dir, shape, quant); err != nil {
					return err
				}
			}
			if len(concurrent) > 0 {
				res, err := benchConcurrent(cmd.Context(), path, concurrent, promptLen, genLen)
				if err != nil {
					return err
				}
				return printResult(cmd, res, res.print)
			}
			out, err := bench.Engine(cmd.Context(), bench.EngineConfig{Model: path, PromptTokens: promptLen, DecodeTokens: genLen})
			var ce *bench.ContextError
			if errors.As(err, &ce) {
				return usageErrorf("--prompt %d + --tokens %d exceed the model's context of %d", ce.Prompt, ce.Decode, ce.Context)
			}
			if err != nil {
				return err
			}
			text := func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "model    %s (%s, %d threads)\nprompt   %d tokens at %.1f tokens/s\ndecode   %d tokens at %.1f tokens/s\npeak RSS %.0f MiB (model file %.0f MiB mapped, Go runtime %.0f MiB)\n",
					out.Model, out.Weights, out.Threads, out.PromptTokens, out.PromptPerSec, out.DecodeTokens, out.DecodePerSec, out.PeakRSSMiB, out.FileMiB, out.GoMemoryMiB)
				return err
			}
			if llamaDir == "" {
				return printResult(cmd, out, text)
			}
			// llama.cpp runs after agora's measurement, in a child process,
			// so it does not count toward agora's peak memory.
			side := &engineSideBySide{Agora: out}
			lc, err := runLlamaCpp(cmd.Context(), llamaDir, path, out.Threads, promptLen, genLen)
			switch {
			case errors.Is(err, errNoLlamaCpp):
				side.Skipped = err.Error()
			case err != nil:
				return err
			default:
				side.LlamaCpp = lc
				side.PromptRatio = out.PromptPerSec / lc.PromptPerSec
				side.DecodeRatio = out.DecodePerSec / lc.DecodePerSec
			}
			return printResult(cmd, side, func(w io.Writer) error {
				if err := text(w); err != nil {
					return err
				}
				return printSideBySide(w, side)
			})
		},
	}
	cmd.Flags().StringVar(&shape, "shape", "smollm2-135m", "shape of a generated model: "+shapeNames())
	cmd.Flags().StringVar(&quant, "quant", "q8_0", "weights of a generated model: f32, f16, q8_0, q4_k_m or q6_k")
	cmd.Flags().StringVar(&modelPath, "model", "", "benchmark this GGUF instead of a generated model")
	cmd.Flags().IntVar(&promptLen, "prompt", 64, "prompt tokens")
	cmd.Flags().IntVar(&genLen, "tokens", 64, "tokens to decode")
	cmd.Flags().IntVar(&threads, "threads", 0, "worker threads (default GOMAXPROCS, i.e. all cores)")
	cmd.Flags().IntSliceVar(&concurrent, "concurrent", nil, "measure continuous batching instead: tokens/s summed over this many concurrent streams (comma-separated counts, e.g. 1,4,16)")
	cmd.Flags().StringVar(&llamaDir, "llamacpp", "", "also run llama.cpp on the same model through node-llama-cpp installed in this directory, and print the ratios")
	return cmd
}

// benchModel generates the engine benchmark's random-weight model in dir and
// returns its path. It runs the generator in a child agora process so the
// generator's memory stays out of the benchmark's peak.
func benchModel(cmd *cobra.Command, dir, shape, quant string) (string, error) {
	s, ok := engine.Shapes[shape]
	if !ok {
		return "", usageErrorf("--shape %q: one of %s", shape, shapeNames())
	}
	switch engine.Quant(quant) {
	case engine.QuantF32, engine.QuantF16, engine.QuantQ8, engine.QuantQ4KM, engine.QuantQ6K:
	default:
		return "", usageErrorf("--quant %q: one of f32, f16, q8_0, q4_k_m, q6_k", quant)
	}
	path := filepath.Join(dir, shape+".gguf")
	fmt.Fprintf(cmd.ErrOrStderr(), "generating a %s %s model…\n", shape, quant)
	if err := genInChild(cmd.Context(), path, shape, quant); err != nil {
		// Still measurable, only the peak memory includes the generator.
		fmt.Fprintf(cmd.ErrOrStderr(), "(child process failed: %v; generating in-process)\n", err)
		if err := engine.Generate(path, s, engine.Quant(quant), 1); err != nil {
			return "", err
		}
		runtime.GC()
		debug.FreeOSMemory()
	}
	return path, nil
}

// genInChild writes the benchmark model from a child agora process.
func genInChild(ctx context.Context, path, shape, quant string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if strings.HasSuffix(exe, ".test") {
		return errors.New("running under go test")
	}
	c := exec.CommandContext(ctx, exe, "model", "gen", "--out", path, "--shape", shape, "--quant", quant, "--seed", "1")
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// concurrentBench is `agora bench engine --concurrent`'s result.
type concurrentBench struct {
	Model        string           `json:"model"`
	Weights      string           `json:"weights"`
	Threads      int              `json:"threads"`
	PromptTokens int              `json:"prompt_tokens"`
	DecodeTokens int              `json:"decode_tokens"`
	Rows         []concurrencyRow `json:"rows"`
}

type concurrencyRow struct {
	Streams        int     `json:"streams"`
	Tokens         int     `json:"completion_tokens"`       // summed over the batched streams
	BatchedPerSec  float64 `json:"batched_tokens_per_sec"`  // summed over the streams
	SeparatePerSec float64 `json:"separate_tokens_per_sec"` // the same streams as separate Generate calls
	Ratio          float64 `json:"ratio"`
}

func (r *concurrentBench) print(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "model    %s (%s, %d threads), streams of %d prompt + %d completion tokens\nstreams  tokens  batched tok/s  separate tok/s  ratio\n",
		r.Model, r.Weights, r.Threads, r.PromptTokens, r.DecodeTokens); err != nil {
		return err
	}
	for _, row := range r.Rows {
		if _, err := fmt.Fprintf(w, "%7d  %6d  %13.1f  %14.1f  %5.2f\n", row.Streams, row.Tokens, row.BatchedPerSec, row.SeparatePerSec, row.Ratio); err != nil {
			return err
		}
	}
	return nil
}

// benchConcurrent runs, for each count, that many streams at once through a
// miner.Batcher and then as separate Generate calls, and reports completion
// tokens per second summed over the streams.
func benchConcurrent(ctx context.Context, path string, counts []int, promptLen, genLen int) (*concurrentBench, error) {
	m, err := engine.Load(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	c := m.Config()
	if promptLen+genLen > c.Context {
		return nil, usageErrorf("--prompt %d + --tokens %d exceed the model's context of %d", promptLen, genLen, c.Context)
	}
	// Each stream its own prompt, so no two share a cache by accident.
	prompts := make([][]int, slices.Max(counts))
	for s := range prompts {
		prompts[s] = make([]int, promptLen)
		for i := range prompts[s] {
			prompts[s][i] = (i*7919 + s*104729 + 11) % c.Vocab
		}
	}
	o := engine.GenerateOptions{MaxTokens: genLen, Stop: []int{-1}} // greedy; EOS still ends a stream early
	run := func(n int, gen func(ctx context.Context, prompt []int) (*engine.Result, error)) (float64, int, error) {
		start := time.Now()
		tokens := make([]int, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for s := range n {
			wg.Go(func() {
				res, err := gen(ctx, prompts[s])
				if err != nil {
					errs[s] = err
					return
				}
				tokens[s] = len(res.Tokens)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, 0, err
		}
		total := 0
		for _, t := range tokens {
			total += t
		}
		return float64(total) / time.Since(start).Seconds(), total, nil
	}
	out := &concurrentBench{Model: c.Name, Weights: c.WeightType, Threads: runtime.GOMAXPROCS(0), PromptTokens: promptLen, DecodeTokens: genLen}
	for _, n := range counts {
		b := miner.NewBatcher(m, int64(n*(promptLen+genLen))*c.KVBytesPerToken())
		batched, tokens, err := run(n, func(ctx context.Context, p []int) (*engine.Result, error) { return b.Generate(ctx, p, o, nil) })
		if err != nil {
			return nil, fmt.Errorf("%d batched streams: %w", n, err)
		}
		separate, _, err := run(n, func(ctx context.Context, p []int) (*engine.Result, error) { return m.Generate(ctx, p, o, nil) })
		if err != nil {
			return nil, fmt.Errorf("%d separate streams: %w", n, err)
		}
		out.Rows = append(out.Rows, concurrencyRow{Streams: n, Tokens: tokens, BatchedPerSec: batched, SeparatePerSec: separate, Ratio: batched / separate})
	}
	return out, nil
}
