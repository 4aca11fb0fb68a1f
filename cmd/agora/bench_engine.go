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
	"runtime/metrics"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/engine"
)

func newBenchEngineCmd() *cobra.Command {
	var shape, quant, modelPath string
	var promptLen, genLen, threads int
	cmd := &cobra.Command{
		Use:   "engine [--shape smollm2-135m --quant q8_0 | --model F.gguf]",
		Short: "Measure the built-in engine's prompt and decode tokens/s and peak memory",
		Long: `Measures the built-in engine on a model: prompt processing (batched) and
decode tokens per second, and the process's peak resident memory.

Without --model it generates a random-weight model of --shape into a
temporary directory first (in a child process, so the generator's memory does
not count toward the peak). Decoding runs greedily for exactly --tokens
tokens (end-of-sequence tokens do not stop it).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if promptLen < 1 || genLen < 2 {
				return usageErrorf("--prompt must be at least 1 and --tokens at least 2")
			}
			if threads > 0 {
				runtime.GOMAXPROCS(threads)
			}
			path := modelPath
			if path == "" {
				s, ok := engine.Shapes[shape]
				if !ok {
					return usageErrorf("--shape %q: one of %s", shape, shapeNames())
				}
				switch engine.Quant(quant) {
				case engine.QuantF32, engine.QuantF16, engine.QuantQ8:
				default:
					return usageErrorf("--quant %q: one of f32, f16, q8_0", quant)
				}
				dir, err := os.MkdirTemp("", "agora-bench-engine-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				path = filepath.Join(dir, shape+".gguf")
				fmt.Fprintf(cmd.ErrOrStderr(), "generating a %s %s model…\n", shape, quant)
				if err := genInChild(cmd.Context(), path, shape, quant); err != nil {
					// Still measurable, only the peak memory includes the generator.
					fmt.Fprintf(cmd.ErrOrStderr(), "(child process failed: %v; generating in-process)\n", err)
					if err := engine.Generate(path, s, engine.Quant(quant), 1); err != nil {
						return err
					}
					runtime.GC()
					debug.FreeOSMemory()
				}
			}
			m, err := engine.Load(path)
			if err != nil {
				return err
			}
			defer m.Close()
			ctx := cmd.Context()
			c := m.Config()
			if promptLen+genLen > c.Context {
				return usageErrorf("--prompt %d + --tokens %d exceed the model's context of %d", promptLen, genLen, c.Context)
			}
			prompt := make([]int, promptLen)
			for i := range prompt {
				prompt[i] = (i*7919 + 11) % c.Vocab
			}
			// Prompt speed: a generation of one token is almost all prompt.
			t0 := time.Now()
			if _, err := m.Generate(ctx, prompt, engine.GenerateOptions{MaxTokens: 1}, nil); err != nil {
				return err
			}
			promptSecs := time.Since(t0).Seconds()
			// Stop: [-1] only replaces no stop token; to keep decoding through
			// EOS we stop on nothing the model can produce.
			o := engine.GenerateOptions{MaxTokens: genLen, Stop: []int{-1}}
			res, err := m.Generate(ctx, prompt, o, nil)
			if err != nil {
				return err
			}
			decodeSecs := res.Duration.Seconds() - res.TimeToFirst.Seconds()
			decoded := len(res.Tokens) - 1 // the first token came from the prompt pass
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
			metrics.Read(sample)
			var goBytes uint64
			if sample[0].Value.Kind() == metrics.KindUint64 {
				goBytes = sample[0].Value.Uint64()
			}
			st, _ := os.Stat(path)
			var fileBytes int64
			if st != nil {
				fileBytes = st.Size()
			}
			out := struct {
				Model        string  `json:"model"`
				Weights      string  `json:"weights"`
				Threads      int     `json:"threads"`
				PromptTokens int     `json:"prompt_tokens"`
				PromptPerSec float64 `json:"prompt_tokens_per_second"`
				DecodeTokens int     `json:"decode_tokens"`
				DecodePerSec float64 `json:"decode_tokens_per_second"`
				PeakRSSMiB   float64 `json:"peak_rss_mib"`
				GoMemoryMiB  float64 `json:"go_runtime_mib"`
				FileMiB      float64 `json:"model_file_mib"`
			}{c.Name, c.WeightType, runtime.GOMAXPROCS(0), promptLen, float64(promptLen) / promptSecs,
				decoded, float64(decoded) / decodeSecs, float64(ru.Maxrss) / 1024, float64(goBytes) / (1 << 20), float64(fileBytes) / (1 << 20)}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "model    %s (%s, %d threads)\nprompt   %d tokens at %.1f tokens/s\ndecode   %d tokens at %.1f tokens/s\npeak RSS %.0f MiB (model file %.0f MiB mapped, Go runtime %.0f MiB)\n",
					out.Model, out.Weights, out.Threads, out.PromptTokens, out.PromptPerSec, out.DecodeTokens, out.DecodePerSec, out.PeakRSSMiB, out.FileMiB, out.GoMemoryMiB)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&shape, "shape", "smollm2-135m", "shape of a generated model: "+shapeNames())
	cmd.Flags().StringVar(&quant, "quant", "q8_0", "weights of a generated model: f32, f16 or q8_0")
	cmd.Flags().StringVar(&modelPath, "model", "", "benchmark this GGUF instead of a generated model")
	cmd.Flags().IntVar(&promptLen, "prompt", 64, "prompt tokens")
	cmd.Flags().IntVar(&genLen, "tokens", 64, "tokens to decode")
	cmd.Flags().IntVar(&threads, "threads", 0, "worker threads (default GOMAXPROCS, i.e. all cores)")
	return cmd
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
