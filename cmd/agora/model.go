package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/engine"
)

func newModelCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Generate, inspect and download GGUF models for the built-in engine"}
	cmd.AddCommand(newModelGenCmd(), newModelInfoCmd(), newModelPullCmd())
	return cmd
}

func shapeNames() string {
	var names []string
	for n := range engine.Shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func newModelGenCmd() *cobra.Command {
	var out, shape, quant string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "gen --out F.gguf [--shape tiny] [--quant q8_0] [--seed N]",
		Short: "Write a random-weight (untrained) model with a small valid tokenizer, for tests and offline devnets",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, ok := engine.Shapes[shape]
			if !ok {
				return usageErrorf("--shape %q: one of %s", shape, shapeNames())
			}
			if out == "" {
				return usageErrorf("--out FILE.gguf is required")
			}
			if err := engine.Generate(out, s, engine.Quant(quant), seed); err != nil {
				if strings.Contains(err.Error(), "unknown quantization") {
					return usageError{err}
				}
				return err
			}
			id, err := engine.FileID(out)
			if err != nil {
				return err
			}
			res := map[string]string{"path": out, "id": id, "shape": shape, "quant": quant}
			return printResult(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "wrote %s (%s, %s, untrained)\nmodel id %s\n", out, shape, quant, id)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "output GGUF path")
	cmd.Flags().StringVar(&shape, "shape", "tiny", "model shape: "+shapeNames())
	cmd.Flags().StringVar(&quant, "quant", "q8_0", "weights: f32, f16 or q8_0")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed for the weights")
	return cmd
}

func newModelInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info F.gguf",
		Short: "Show a model's architecture, shapes, quantization, tokenizer and id",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); errors.Is(err, fs.ErrNotExist) {
				return notFoundError{fmt.Errorf("model file %s does not exist", args[0])}
			}
			m, err := engine.Load(args[0])
			if err != nil {
				return err
			}
			defer m.Close()
			in, err := m.Info()
			if err != nil {
				return err
			}
			return printResult(cmd, in, func(w io.Writer) error {
				var types []string
				for t, n := range in.TensorTypes {
					types = append(types, fmt.Sprintf("%s ×%d", t, n))
				}
				sort.Strings(types)
				tok := in.Tokenizer
				if in.PreTokenizer != "" {
					tok += " (pre-tokenizer " + in.PreTokenizer + ")"
				}
				_, err := fmt.Fprintf(w, "name          %s\narchitecture  %s\nparameters    %.1fM (%.1f MiB file)\nlayers        %d\ndim           %d (ffn %d)\nheads         %d (kv %d, head dim %d)\nvocab         %d\ncontext       %d\nrope          base %g, %s, scale %g\nweights       %s (matrices: %s)\noutput head   %s\ntokenizer     %s, bos %d eos %d eot %d\nchat template %s\nid            %s\n",
					in.Name, in.Arch, float64(in.Parameters)/1e6, float64(in.FileBytes)/(1<<20), in.Layers, in.Dim, in.Hidden, in.Heads, in.KVHeads, in.HeadDim,
					in.Vocab, in.Context, in.RopeBase, map[bool]string{true: "neox", false: "adjacent pairs"}[in.RopeNeox], in.RopeScale,
					in.WeightType, strings.Join(types, ", "), map[bool]string{true: "tied to the embeddings", false: "separate"}[in.TiedOutput],
					tok, in.BOS, in.EOS, in.EOT, in.ChatTemplate, in.ID)
				return err
			})
		},
	}
}

func newModelPullCmd() *cobra.Command {
	var sha string
	cmd := &cobra.Command{
		Use:   "pull [NAME|URL]",
		Short: "Download a GGUF model into --home/models (default: SmolLM2-135M-Instruct Q8_0), resuming and checking sha256",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := engine.DefaultModelURL
			if len(args) == 1 {
				if u, ok := engine.KnownModels[args[0]]; ok {
					url = u
				} else if strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://") {
					url = args[0]
				} else {
					return usageErrorf("%q is neither a known model nor an http(s) URL", args[0])
				}
			}
			dir := filepath.Join(homeDir(cmd), "models")
			bar := newProgressBar(cmd.ErrOrStderr(), filepath.Base(url))
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			p, err := engine.Pull(ctx, &http.Client{Timeout: 6 * time.Hour}, url, dir, sha, bar.update)
			bar.done()
			if err != nil {
				return err
			}
			if p.Verified == "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: no sha256 to check %s against (give --sha256)\n", filepath.Base(p.Path))
			}
			return printResult(cmd, p, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s\nmodel id %s\n", p.Path, p.SHA256)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&sha, "sha256", "", "expected sha256 of the file (default: what the server states, if anything)")
	return cmd
}

// progressBar draws a one-line download bar on a terminal stream.
type progressBar struct {
	w     io.Writer
	label string
	last  time.Time
	shown bool
}

func newProgressBar(w io.Writer, label string) *progressBar { return &progressBar{w: w, label: label} }

func (p *progressBar) update(done, total int64) {
	if time.Since(p.last) < 200*time.Millisecond && done != total {
		return
	}
	p.last, p.shown = time.Now(), true
	mb := func(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) }
	if total <= 0 {
		fmt.Fprintf(p.w, "\r%s  %s MB", p.label, mb(done))
		return
	}
	const width = 30
	fill := int(done * width / total)
	fmt.Fprintf(p.w, "\r%s  [%s%s] %3d%%  %s/%s MB", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done*100/total, mb(done), mb(total))
}

func (p *progressBar) done() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}
