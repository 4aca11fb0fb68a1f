package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/engine"
)

func newBenchEngineCmd() *cobra.Command {
	var shape, quant, modelPath string
	var promptLen, genLen int
	cmd := &cobra.Command{
		Use:   "engine [--shape smollm2-135m --quant q8_0 | --model F.gguf]",
		Short: "Measure the built-in engine's prompt and decode tokens/s and peak memory",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := modelPath
			if path == "" {
				s, ok := engine.Shapes[shape]
				if !ok {
					return usageErrorf("--shape %q: one of %s", shape, shapeNames())
				}
				dir, err := os.MkdirTemp("", "agora-bench-engine-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				path = filepath.Join(dir, shape+".gguf")
				fmt.Fprintf(cmd.ErrOrStderr(), "generating a %s %s model…\n", shape, quant)
				if err := engine.Generate(path, s, engine.Quant(quant), 1); err != nil {
					return err
				}
			}
			// Generating the model leaves hundreds of MB of garbage; collect it
			// now so the collector does not compete with the measurement.
			runtime.GC()
			debug.FreeOSMemory()
			m, err := engine.Load(path)
			if err != nil {
				return err
			}
			defer m.Close()
			ctx := cmd.Context()
			prompt := make([]int, promptLen)
			for i := range prompt {
				prompt[i] = (i*7919 + 11) % m.Config().Vocab
			}
			// Prompt speed: a generation of one token is almost all prompt.
			t0 := time.Now()
			if _, err := m.Generate(ctx, prompt, engine.GenerateOptions{MaxTokens: 1}, nil); err != nil {
				return err
			}
			promptSecs := time.Since(t0).Seconds()
			res, err := m.Generate(context.WithoutCancel(ctx), prompt, engine.GenerateOptions{MaxTokens: genLen, Stop: []int{-1}}, nil)
			if err != nil {
				return err
			}
			decodeSecs := res.Duration.Seconds() - res.TimeToFirst.Seconds()
			decoded := len(res.Tokens) - 1
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			out := struct {
				Model        string  `json:"model"`
				Weights      string  `json:"weights"`
				Threads      int     `json:"threads"`
				PromptTokens int     `json:"prompt_tokens"`
				PromptPerSec float64 `json:"prompt_tokens_per_second"`
				DecodeTokens int     `json:"decode_tokens"`
				DecodePerSec float64 `json:"decode_tokens_per_second"`
				PeakRSSMiB   float64 `json:"peak_rss_mib"`
			}{m.Config().Name, m.Config().WeightType, runtime.GOMAXPROCS(0), promptLen, float64(promptLen) / promptSecs,
				decoded, float64(decoded) / decodeSecs, float64(ru.Maxrss) / 1024}
			return printResult(cmd, out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "model    %s (%s, %d threads)\nprompt   %d tokens at %.1f tokens/s\ndecode   %d tokens at %.1f tokens/s\npeak RSS %.0f MiB\n",
					out.Model, out.Weights, out.Threads, out.PromptTokens, out.PromptPerSec, out.DecodeTokens, out.DecodePerSec, out.PeakRSSMiB)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&shape, "shape", "smollm2-135m", "shape of a generated model: "+shapeNames())
	cmd.Flags().StringVar(&quant, "quant", "q8_0", "weights of a generated model: f32, f16 or q8_0")
	cmd.Flags().StringVar(&modelPath, "model", "", "benchmark this GGUF instead of a generated model")
	cmd.Flags().IntVar(&promptLen, "prompt", 64, "prompt tokens")
	cmd.Flags().IntVar(&genLen, "tokens", 64, "tokens to decode")
	return cmd
}
