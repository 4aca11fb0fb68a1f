package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/engine"
)

func newModelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Generate, inspect and download GGUF models; publish them on chain and trade their royalty shares",
		Long: `The engine commands (gen, info, pull) work on local GGUF files.

The chain commands make a model shared property: publish registers a GGUF
file by its sha256 with royalty terms fixed for good (royalty_bps of the
revenue of every subnet pinning it, data_bps of that to the datasets it
cites) and gives the publisher every share; shares earn the royalty, stream
in over the chain's royalty_stream_blocks, and can be transferred, claimed
against and sold in an offering.`,
	}
	cmd.AddCommand(newModelGenCmd(), newModelInfoCmd(), newModelPullCmd())
	cmd.AddCommand(newModelPublishCmd(), modelUpdate.command(), newModelShowCmd(), newModelListCmd(), newModelSharesCmd(),
		modelClaim.command(), modelOffer.command(), modelBuy.command(), newModelOfferingCmd())
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
	cmd.Flags().StringVar(&quant, "quant", "q8_0", "weights: f32, f16, q8_0, q4_k_m (llama.cpp's Q4_K/Q6_K mix) or q6_k")
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

// ---- Models on chain: publish, shares, royalty, offerings ----

// modelHashBar is the file size from which publish draws a progress bar
// while it hashes: below it hashing takes well under a second.
const modelHashBar = 64 << 20

// hashReader reads for a hash, reporting progress and stopping when ctx ends.
type hashReader struct {
	ctx         context.Context
	r           io.Reader
	done, total int64
	progress    func(done, total int64)
}

func (h *hashReader) Read(b []byte) (int, error) {
	if err := h.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := h.r.Read(b)
	h.done += int64(n)
	if h.progress != nil {
		h.progress(h.done, h.total)
	}
	return n, err
}

// hashModel is a model's id: the sha256 of its file in lowercase hex, as
// engine.FileID computes it. A big file gets pull's progress bar on stderr.
func hashModel(ctx context.Context, path string, stderr io.Writer) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", notFoundError{fmt.Errorf("model file %s does not exist", path)}
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	hr := &hashReader{ctx: ctx, r: f, total: st.Size()}
	bar := newProgressBar(stderr, "hashing "+filepath.Base(path))
	if st.Size() >= modelHashBar {
		hr.progress = bar.update
	}
	h := sha256.New()
	_, err = io.Copy(h, hr)
	bar.done()
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// modelID parses a model id (sha256 hex; upper case is accepted and lowered).
func (r *txRun) modelID(s string) string {
	id, err := parseModelID(s)
	r.fail(err)
	return id
}

func parseModelID(s string) (string, error) {
	id := strings.ToLower(s)
	if _, err := tx.ModelIDBytes(id); err != nil {
		return "", usageError{err}
	}
	return id, nil
}

// count parses a positive whole number of shares.
func (r *txRun) count(what, s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		r.usagef("%s %q must be a positive integer", what, s)
	}
	return n
}

// parseCitations reads --cite ROOT=WEIGHT values.
func parseCitations(in []string) ([]*tx.Citation, error) {
	out := make([]*tx.Citation, 0, len(in))
	for _, c := range in {
		root, w, ok := strings.Cut(c, "=")
		if !ok {
			return nil, usageErrorf("--cite %q: want ROOT=WEIGHT", c)
		}
		r, err := tx.ParseDatasetRoot(root)
		if err != nil {
			return nil, usageErrorf("--cite %q: %v", c, err)
		}
		weight, err := strconv.ParseUint(w, 10, 64)
		if err != nil || weight == 0 {
			return nil, usageErrorf("--cite %q: the weight must be a positive integer", c)
		}
		out = append(out, &tx.Citation{Dataset: r, Weight: weight})
	}
	return out, nil
}

func newModelPublishCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "publish FILE.gguf --from OWNER --royalty-bps N [--shares N] [--name S] [--license S] [--url U]… [--data-bps N --cite ROOT=WEIGHT…]",
		Short: "Register a GGUF model on chain by its sha256, with fixed royalty terms; the signer gets every share",
		Long: `publish hashes FILE (its sha256 is the model id) and sends model_register.
The signer becomes the model's owner and holds all --shares. Every subnet
that pins the model pays royalty-bps of its settled revenue to the model; of
that, data-bps goes to the cited datasets (registered roots) by weight and
the rest to the shareholders. Royalty, shares and citations can never change
(buyers of shares and subnets rely on them); name, license and URLs can,
with 'agora model update'. --dry-run only prints the id.`,
		Example: `  agora model publish tiny.gguf --from alice --royalty-bps 500 --name tiny --license apache-2.0 \
    --url https://example.org/tiny.gguf --data-bps 2000 --cite 3f…a1=1`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if dry, _ := f.GetBool("dry-run"); !dry && !f.Changed("royalty-bps") {
				return usageErrorf("--royalty-bps is required: the royalty is fixed at registration (0 for none)")
			}
			id, err := hashModel(cmd.Context(), args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if dry, _ := f.GetBool("dry-run"); dry {
				return printResult(cmd, map[string]string{"model_id": id}, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, id)
					return err
				})
			}
			cites, _ := f.GetStringArray("cite")
			citations, err := parseCitations(cites)
			if err != nil {
				return err
			}
			m := &tx.MsgModelRegister{ModelId: id, Citations: citations}
			m.Name, _ = f.GetString("name")
			m.License, _ = f.GetString("license")
			m.Urls, _ = f.GetStringArray("url")
			m.RoyaltyBps, _ = f.GetUint32("royalty-bps")
			m.DataBps, _ = f.GetUint32("data-bps")
			m.Shares, _ = f.GetUint64("shares")
			switch {
			case m.RoyaltyBps > 10_000 || m.DataBps > 10_000:
				return usageErrorf("--royalty-bps and --data-bps are basis points: at most 10000")
			case m.Shares == 0:
				return usageErrorf("--shares must be positive")
			case m.DataBps > 0 && len(citations) == 0:
				return usageErrorf("--data-bps needs the datasets it pays: --cite ROOT=WEIGHT")
			}
			r := &txRun{cmd: cmd}
			if r.flag("from") == "" {
				return usageErrorf("--from KEY is required")
			}
			r.sign("from")
			if r.err != nil {
				return r.err
			}
			r.created.ModelID = id
			return r.send(msgs(tx.ModelRegister(m)))
		},
	}
	f := cmd.Flags()
	f.String("from", "", "owner key: pays the fee and receives every share")
	f.String("name", "", "model name")
	f.String("license", "", "license of the weights (an SPDX id, say)")
	f.StringArray("url", nil, "where the weights can be fetched (repeatable)")
	f.Uint32("royalty-bps", 0, "royalty, in basis points of the revenue of every subnet pinning the model (required)")
	f.Uint64("shares", 1_000_000, "total share supply")
	f.Uint32("data-bps", 0, "basis points of the royalty paid on to the cited datasets")
	f.StringArray("cite", nil, "a training dataset and its weight among the citations, ROOT=WEIGHT (repeatable)")
	f.Bool("dry-run", false, "only hash the file and print the model id")
	addTxFlags(cmd)
	return cmd
}

var (
	modelUpdate = txSpec{
		use:   "update ID --from OWNER [--name S] [--license S] [--url U]…",
		short: "Change a model's name, license or URLs (owner); only the flags given change",
		args:  1,
		from:  "owner key",
		flags: func(f *pflag.FlagSet) {
			f.String("name", "", "new name")
			f.String("license", "", "new license")
			f.StringArray("url", nil, "new URL list (repeatable; replaces the old list)")
		},
		build: func(r *txRun, a []string) []*tx.Msg {
			id := r.modelID(a[0])
			f := r.cmd.Flags()
			if !f.Changed("name") && !f.Changed("license") && !f.Changed("url") {
				r.usagef("give --name, --license or --url: what to change")
			}
			// The message replaces all three fields; read the record so the
			// flags not given keep their values.
			var m *tx.Model
			if c := r.client(); c != nil {
				var err error
				m, err = c.Model(r.cmd.Context(), id, false)
				if errors.Is(err, client.ErrNoModel) {
					err = notFoundError{err}
				}
				r.fail(err)
			}
			if r.err != nil {
				return nil
			}
			name, license, urls := m.Name, m.License, m.Urls
			if f.Changed("name") {
				name = r.flag("name")
			}
			if f.Changed("license") {
				license = r.flag("license")
			}
			if f.Changed("url") {
				urls, _ = f.GetStringArray("url")
			}
			r.sign("from")
			return msgs(tx.ModelUpdate(id, name, license, urls))
		},
	}
	modelClaim = oneArgTx("claim ID --from HOLDER", "Pay a shareholder the royalty it has earned from a model",
		"shareholder key", (*txRun).modelID, tx.ModelClaim)
	modelSharesTransfer = txSpec{
		use:   "transfer ID TO N --from HOLDER",
		short: "Move N of a model's shares to TO (an address or key name); earnings so far stay with the sender",
		args:  3,
		from:  "holder key",
		build: func(r *txRun, a []string) []*tx.Msg {
			id, to, n := r.modelID(a[0]), r.address(a[1]), r.count("share count", a[2])
			r.sign("from")
			return msgs(tx.ModelSharesTransfer(id, to, n))
		},
	}
	modelOffer = txSpec{
		use:   "offer ID --from OWNER --shares N --price AGR [--price-step AGR] [--min-shares N] (--end-height H | --blocks N)",
		short: "Offer some of the owner's shares for sale until a height (one open offering per model)",
		long: `offer locks --shares of the owner's shares for sale. The k-th share sold
(from 0) costs price + k × price-step. Payments are escrowed until the
offering closes: when it sells out, or at the end of its end height. Then, if
at least --min-shares sold, buyers get their shares and the owner the
proceeds; otherwise every buyer is refunded exactly what it paid. Unsold
shares are unlocked either way.`,
		args: 1,
		from: "owner key",
		flags: func(f *pflag.FlagSet) {
			f.Uint64("shares", 0, "shares offered")
			f.String("price", "", "price of the first share (e.g. 0.01agr)")
			f.String("price-step", "", "added to the price per share sold (default 0)")
			f.Uint64("min-shares", 0, "refund everyone unless at least this many sell (0: no minimum)")
			f.Uint64("end-height", 0, "close at the end of this block")
			f.Uint64("blocks", 0, "close this many blocks from now (instead of --end-height)")
		},
		build: func(r *txRun, a []string) []*tx.Msg {
			f := r.cmd.Flags()
			m := &tx.MsgModelOffer{ModelId: r.modelID(a[0])}
			m.Shares, _ = f.GetUint64("shares")
			m.MinShares, _ = f.GetUint64("min-shares")
			end, _ := f.GetUint64("end-height")
			blocks, _ := f.GetUint64("blocks")
			switch {
			case m.Shares == 0:
				r.usagef("--shares must be positive")
			case !f.Changed("price"):
				r.usagef("--price is required (0agr for free shares)")
			case m.MinShares > m.Shares:
				r.usagef("--min-shares %d is above --shares %d", m.MinShares, m.Shares)
			case (end == 0) == (blocks == 0):
				r.usagef("give one of --end-height and --blocks")
			}
			m.Price, m.PriceStep = r.optionalAmount("price"), r.optionalAmount("price-step")
			r.sign("from")
			if blocks > 0 {
				end = r.blocksFromNow(blocks)
			}
			m.EndHeight = end
			return msgs(tx.ModelOffer(m))
		},
	}
	modelBuy = txSpec{
		use:   "buy ID N --from BUYER [--max-cost AGR]",
		short: "Buy N shares in a model's open offering; the payment is escrowed until it closes",
		long: `buy pays for N shares in the model's open offering. --max-cost caps what
the purchase may cost; by default it is the cost of N shares at the
offering's current price, so a purchase that lands after someone else's
(at a higher price) fails instead of paying more.`,
		args: 2,
		from: "buyer key",
		flags: func(f *pflag.FlagSet) {
			f.String("max-cost", "", "refuse to pay more than this (default: the current cost of N shares)")
		},
		build: func(r *txRun, a []string) []*tx.Msg {
			id, n := r.modelID(a[0]), r.count("share count", a[1])
			maxCost := r.optionalAmount("max-cost")
			if !r.cmd.Flags().Changed("max-cost") {
				if c := r.client(); c != nil {
					o, err := c.Offering(r.cmd.Context(), id, false)
					if errors.Is(err, client.ErrNoOffering) {
						err = notFoundError{err}
					}
					if r.fail(err) {
						if left := o.Shares - o.Sold; n > left {
							r.usagef("the offering has %d shares left, not %d", left, n)
						}
						maxCost, err = tx.OfferingCost(o.Price, o.PriceStep, o.Sold, n)
						r.fail(err)
					}
				}
				if r.err == nil {
					fmt.Fprintf(r.cmd.ErrOrStderr(), "buying %d shares for at most %s\n", n, agr.Format(maxCost))
				}
			}
			r.sign("from")
			return msgs(tx.ModelBuy(id, n, maxCost))
		},
	}
)

// bps prints basis points as a percentage.
func bps(n uint32) string { return fmt.Sprintf("%d.%02d%%", n/100, n%100) }

type citationOut struct {
	Dataset string `json:"dataset"`
	Weight  uint64 `json:"weight"`
}

// poolOut is a model's or dataset's royalty pool as of a height: the
// stored record is advanced only when a transaction touches it, so what is
// still streaming is computed here for the height the answer is for.
type poolOut struct {
	Height    int64  `json:"height"`
	Shares    uint64 `json:"shares"` // a dataset's: total contributor weight
	Earned    uint64 `json:"earned"`
	Claimed   uint64 `json:"claimed"`
	Held      uint64 `json:"held"`
	Streaming uint64 `json:"streaming"`
	StreamEnd uint64 `json:"stream_end"`
}

func poolOf(p *tx.SharePool, height int64) poolOut {
	if p == nil {
		p = &tx.SharePool{}
	}
	if h := uint64(max(height, 0)); h > p.StreamFrom {
		// A copy: the advance is only for display. Should the record be
		// corrupt, show it as stored rather than fail the whole answer.
		if a := proto.Clone(p).(*tx.SharePool); a.Advance(h) == nil {
			p = a
		}
	}
	return poolOut{Height: height, Shares: p.GetShares(), Earned: p.GetEarned(), Claimed: p.GetClaimed(), Held: p.GetHeld(),
		Streaming: p.GetStreaming(), StreamEnd: p.GetStreamEnd()}
}

func (p poolOut) text(w io.Writer) {
	fmt.Fprintf(w, "earned        %s\nclaimed       %s\nheld          %s", agr.Format(p.Earned), agr.Format(p.Claimed), agr.Format(p.Held))
	if p.Streaming > 0 {
		fmt.Fprintf(w, " (%s still streaming in, until block %d)", agr.Format(p.Streaming), p.StreamEnd)
	}
	fmt.Fprintf(w, "\nas of block   %d\n", p.Height)
}

type modelOut struct {
	ID           string        `json:"id"`
	Owner        string        `json:"owner"`
	Name         string        `json:"name"`
	License      string        `json:"license"`
	URLs         []string      `json:"urls"`
	RoyaltyBps   uint32        `json:"royalty_bps"`
	DataBps      uint32        `json:"data_bps"`
	Citations    []citationOut `json:"citations"`
	RegisteredAt uint64        `json:"registered_at"`
	Seq          uint64        `json:"seq"`
	DataPaid     uint64        `json:"data_paid"`
	poolOut
}

func modelOf(m *tx.Model, height int64) modelOut {
	out := modelOut{ID: m.Id, Owner: addrString(m.Owner), Name: m.Name, License: m.License, URLs: m.Urls,
		RoyaltyBps: m.RoyaltyBps, DataBps: m.DataBps, RegisteredAt: m.RegisteredAt, Seq: m.Seq, DataPaid: m.DataPaid,
		Citations: make([]citationOut, len(m.Citations)), poolOut: poolOf(m.Pool, height)}
	if out.URLs == nil {
		out.URLs = []string{}
	}
	for i, c := range m.Citations {
		out.Citations[i] = citationOut{hex.EncodeToString(c.Dataset), c.Weight}
	}
	return out
}

func newModelShowCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   "show ID",
		Short: "Show a registered model: owner, royalty terms, shares, citations and its royalty pool",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseModelID(args[0])
			if err != nil {
				return err
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (modelOut, error) {
				m, err := c.Model(ctx, id, prove)
				if errors.Is(err, client.ErrNoModel) {
					return modelOut{}, notFoundError{err}
				}
				if err != nil {
					return modelOut{}, err
				}
				h, err := c.Height(ctx)
				if err != nil {
					return modelOut{}, err
				}
				return modelOf(m, h), nil
			}, func(w io.Writer, m modelOut) error {
				fmt.Fprintf(w, "model         %s (#%d, registered at block %d)\nname          %s\nlicense       %s\nowner         %s\n",
					m.ID, m.Seq, m.RegisteredAt, m.Name, m.License, m.Owner)
				for _, u := range m.URLs {
					fmt.Fprintf(w, "url           %s\n", u)
				}
				fmt.Fprintf(w, "royalty       %s of the revenue of subnets pinning it", bps(m.RoyaltyBps))
				if m.DataBps > 0 {
					fmt.Fprintf(w, "; %s of that to %d dataset(s)", bps(m.DataBps), len(m.Citations))
				}
				fmt.Fprintf(w, "\nshares        %d\n", m.Shares)
				for _, c := range m.Citations {
					fmt.Fprintf(w, "cites         %s weight %d\n", c.Dataset, c.Weight)
				}
				m.poolOut.text(w)
				_, err := fmt.Fprintf(w, "to datasets   %s\n", agr.Format(m.DataPaid))
				return err
			})
		},
	}, &prove)
}

func newModelListCmd() *cobra.Command {
	return readCommand(&cobra.Command{
		Use:   "list",
		Short: "List registered models, in registration order",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, func(ctx context.Context, c *client.Client) ([]modelOut, error) {
				l, err := c.Models(ctx)
				if err != nil {
					return nil, err
				}
				out := make([]modelOut, len(l.Models))
				for i, m := range l.Models {
					out[i] = modelOf(m, l.Height)
				}
				return out, nil
			}, func(w io.Writer, ms []modelOut) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "#\tID\tNAME\tOWNER\tSHARES\tROYALTY\tEARNED")
				for _, m := range ms {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", m.Seq, m.ID, m.Name, m.Owner, m.Shares, bps(m.RoyaltyBps), agr.Format(m.Earned))
				}
				return tw.Flush()
			})
		},
	}, nil)
}

// positionOut is a holder's stake in a model (shares) or dataset (weight).
type positionOut struct {
	ID        string `json:"id"`
	Holder    string `json:"holder"`
	Height    int64  `json:"height"`
	Shares    uint64 `json:"shares"`
	Of        uint64 `json:"of"` // the pool's total
	Locked    uint64 `json:"locked"`
	Owed      uint64 `json:"owed"`
	Claimable uint64 `json:"claimable"`
	Claimed   uint64 `json:"claimed"`
}

func positionOf(id string, holder address.Address, p *client.Position) positionOut {
	return positionOut{ID: id, Holder: holder.String(), Height: p.Height, Shares: p.Holding.GetShares(), Of: p.Pool.GetShares(),
		Locked: p.Holding.GetLocked(), Owed: p.Holding.GetOwed(), Claimable: p.Claimable, Claimed: p.Holding.GetClaimed()}
}

func (p positionOut) text(w io.Writer, unit string) error {
	_, err := fmt.Fprintf(w, "holder     %s\n%-10s %d of %d", p.Holder, unit, p.Shares, p.Of)
	if p.Locked > 0 {
		fmt.Fprintf(w, " (%d locked in an offering)", p.Locked)
	}
	fmt.Fprintf(w, "\nclaimable  %s at block %d\nclaimed    %s\n", agr.Format(p.Claimable), p.Height, agr.Format(p.Claimed))
	return err
}

func newModelSharesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "shares", Short: "Show and transfer a model's royalty shares"}
	cmd.AddCommand(newModelSharesShowCmd(), modelSharesTransfer.command())
	return cmd
}

func newModelSharesShowCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   "show ID ADDRESS|KEY",
		Short: "Show a holder's shares in a model and the royalty it can claim now",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseModelID(args[0])
			if err != nil {
				return err
			}
			holder, err := resolveAddress(cmd, args[1])
			if err != nil {
				return err
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (positionOut, error) {
				p, err := c.ModelPosition(ctx, id, holder, prove)
				if errors.Is(err, client.ErrNoModel) {
					return positionOut{}, notFoundError{err}
				}
				if err != nil {
					return positionOut{}, err
				}
				return positionOf(id, holder, p), nil
			}, func(w io.Writer, p positionOut) error { return p.text(w, "shares") })
		},
	}, &prove)
}

type purchaseOut struct {
	Buyer  string `json:"buyer"`
	Shares uint64 `json:"shares"`
	Paid   uint64 `json:"paid"`
}

type offeringOut struct {
	ModelID   string        `json:"model_id"`
	Seller    string        `json:"seller"`
	Shares    uint64        `json:"shares"`
	Sold      uint64        `json:"sold"`
	Price     uint64        `json:"price"`
	PriceStep uint64        `json:"price_step"`
	NextPrice uint64        `json:"next_price"` // of the next share sold
	MinShares uint64        `json:"min_shares"`
	OpenedAt  uint64        `json:"opened_at"`
	EndHeight uint64        `json:"end_height"`
	Raised    uint64        `json:"raised"`
	Purchases []purchaseOut `json:"purchases"`
}

func newModelOfferingCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   "offering ID",
		Short: "Show a model's open offering: shares sold, next price, escrow and purchases",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseModelID(args[0])
			if err != nil {
				return err
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (offeringOut, error) {
				o, err := c.Offering(ctx, id, prove)
				if errors.Is(err, client.ErrNoOffering) {
					return offeringOut{}, notFoundError{err}
				}
				if err != nil {
					return offeringOut{}, err
				}
				next, err := tx.OfferingCost(o.Price, o.PriceStep, o.Sold, 1)
				if err != nil {
					return offeringOut{}, err
				}
				out := offeringOut{ModelID: o.ModelId, Seller: addrString(o.Seller), Shares: o.Shares, Sold: o.Sold, Price: o.Price,
					PriceStep: o.PriceStep, NextPrice: next, MinShares: o.MinShares, OpenedAt: o.OpenedAt, EndHeight: o.EndHeight,
					Raised: o.Raised, Purchases: make([]purchaseOut, len(o.Purchases))}
				for i, p := range o.Purchases {
					out.Purchases[i] = purchaseOut{addrString(p.Buyer), p.Shares, p.Paid}
				}
				return out, nil
			}, func(w io.Writer, o offeringOut) error {
				fmt.Fprintf(w, "model       %s\nseller      %s\nsold        %d of %d (minimum %d)\nprice       %s, +%s per share sold (next %s)\nopen        blocks %d to %d\nescrowed    %s\n",
					o.ModelID, o.Seller, o.Sold, o.Shares, o.MinShares, agr.Format(o.Price), agr.Format(o.PriceStep), agr.Format(o.NextPrice),
					o.OpenedAt, o.EndHeight, agr.Format(o.Raised))
				for _, p := range o.Purchases {
					fmt.Fprintf(w, "purchase    %s: %d shares for %s\n", p.Buyer, p.Shares, agr.Format(p.Paid))
				}
				return nil
			})
		},
	}, &prove)
}
