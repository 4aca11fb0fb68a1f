package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agoranet/agora/address"
	"github.com/agoranet/agora/agr"
	"github.com/agoranet/agora/chain/tx"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/dataset"
)

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Build dataset manifests and proofs; register datasets on chain and claim their royalty",
		Long: `A dataset is registered by the Merkle root of its manifest: one leaf per
file (its sha256, size, contributor and weight). Models that cite the dataset
pay part of their royalty to it, and its contributors share that by weight.

Offline: 'data build' hashes a directory into a manifest, 'data prove' makes
the inclusion proof of one file, 'data verify' checks a proof. On chain:
'data register' registers the root; contributors are credited either all at
once (--credit-all) or one leaf at a time with 'data contribute PROOF'.`,
	}
	cmd.AddCommand(newDataBuildCmd(), newDataProveCmd(), newDataVerifyCmd())
	cmd.AddCommand(newDataRegisterCmd())
	cmd.AddCommand(txCommands(dataContribute, dataClaim)...)
	cmd.AddCommand(newDataShowCmd(), newDataListCmd(), newDataPositionCmd())
	return cmd
}

// missingFile marks a file that does not exist as not found (exit 3).
func missingFile(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return notFoundError{err}
	}
	return err
}

type buildOut struct {
	Root         string `json:"root"`
	Files        uint64 `json:"files"`
	Size         uint64 `json:"size"`
	Contributors int    `json:"contributors"`
	Manifest     string `json:"manifest"`
}

func newDataBuildCmd() *cobra.Command {
	var contributor, contributors, weightBy, out string
	cmd := &cobra.Command{
		Use:   "build DIR [--contributor ADDR] [--contributors FILE] [--weight-by files|size] [--out FILE]",
		Short: "Hash every file under DIR into a dataset manifest and print its Merkle root",
		Long: `build walks DIR (regular files, in sorted path order, without the manifest
itself), hashes each file and writes the manifest, by default to
DIR/` + dataset.ManifestFile + `. Each file's contributor is --contributor, or the
address of the longest path prefix covering it in --contributors, a file of
"PATH ADDRESS" lines. A file weighs 1, or its size in bytes with
--weight-by size.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if st, err := os.Stat(dir); err != nil {
				return missingFile(err)
			} else if !st.IsDir() {
				return usageErrorf("%s is not a directory", dir)
			}
			var o dataset.BuildOptions
			switch weightBy {
			case "files":
			case "size":
				o.WeightBySize = true
			default:
				return usageErrorf("--weight-by %q: files or size", weightBy)
			}
			if contributor == "" && contributors == "" {
				return usageErrorf("give --contributor or --contributors: every file needs a contributor")
			}
			if contributor != "" {
				a, err := resolveAddress(cmd, contributor)
				if err != nil {
					return err
				}
				o.Contributor = a
			}
			if contributors != "" {
				f, err := os.Open(contributors)
				if err != nil {
					return missingFile(err)
				}
				o.Contributors, err = dataset.ParseContributors(f)
				f.Close()
				if err != nil {
					return usageErrorf("--contributors %s: %v", contributors, err)
				}
			}
			if out == "" {
				out = filepath.Join(dir, dataset.ManifestFile)
			}
			// A manifest written into DIR under another name must not list itself.
			if rel, err := relInside(dir, out); err == nil {
				o.Skip = append(o.Skip, rel)
			}
			m, err := dataset.BuildContext(cmd.Context(), dir, o)
			if err != nil {
				return err
			}
			if err := m.Save(out); err != nil {
				return err
			}
			who, err := m.Contributors()
			if err != nil {
				return err
			}
			res := buildOut{Root: m.Root.String(), Files: m.Files, Size: m.Size, Contributors: len(who), Manifest: out}
			return printResult(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "root          %s\nfiles         %d\nsize          %d bytes\ncontributors  %d\nmanifest      %s\n",
					res.Root, res.Files, res.Size, res.Contributors, res.Manifest)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&contributor, "contributor", "", "address (or key name) credited with every file no --contributors prefix covers")
	cmd.Flags().StringVar(&contributors, "contributors", "", `file of "PATH ADDRESS" lines: who contributed the files under each path prefix`)
	cmd.Flags().StringVar(&weightBy, "weight-by", "files", "a file's weight: files (1 each) or size (its bytes)")
	cmd.Flags().StringVar(&out, "out", "", "manifest path (default DIR/"+dataset.ManifestFile+")")
	return cmd
}

// relInside is file's slash path relative to dir, or an error when file
// is not under dir.
func relInside(dir, file string) (string, error) {
	ad, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	af, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(ad, af)
	if err != nil {
		return "", err
	}
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is not under %s", file, dir)
	}
	return filepath.ToSlash(rel), nil
}

// loadManifest reads a manifest file, or DIR/.agora-dataset.json given DIR.
func loadManifest(p string) (*dataset.Manifest, error) {
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		p = filepath.Join(p, dataset.ManifestFile)
	}
	m, err := dataset.Load(p)
	return m, missingFile(err)
}

func newDataProveCmd() *cobra.Command {
	var manifest, out string
	cmd := &cobra.Command{
		Use:   "prove DIR FILE [--manifest F] [--out F]",
		Short: "Make the inclusion proof of one file of a dataset (JSON, for 'data contribute')",
		Long: `prove re-hashes FILE (a path under DIR, or relative to it), refuses it if it
changed since the manifest was built, and prints its proof as JSON (or
writes it to --out).`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, file := args[0], args[1]
			if manifest == "" {
				manifest = filepath.Join(dir, dataset.ManifestFile)
			}
			m, err := loadManifest(manifest)
			if err != nil {
				return err
			}
			m.Dir = dir
			// FILE may be given from here (DIR/a/b) or from DIR (a/b).
			var candidates []string
			if rel, err := relInside(dir, file); err == nil {
				candidates = append(candidates, rel)
			}
			candidates = append(candidates, filepath.ToSlash(file))
			var p *dataset.Proof
			for _, c := range candidates {
				if p, err = m.Proof(c); !errors.Is(err, dataset.ErrNotInManifest) {
					break
				}
			}
			switch {
			case errors.Is(err, dataset.ErrNotInManifest):
				return notFoundError{fmt.Errorf("%s is not in the manifest %s", file, manifest)}
			case err != nil:
				return missingFile(err)
			}
			if out == "" {
				b, err := p.MarshalIndent()
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := p.Save(out); err != nil {
				return err
			}
			res := map[string]any{"proof": out, "root": p.Root.String(), "index": p.Index, "files": p.Files}
			return printResult(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "wrote the proof of %s (leaf %d of %d) to %s\n", file, p.Index, p.Files, out)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&manifest, "manifest", "", "manifest path (default DIR/"+dataset.ManifestFile+")")
	cmd.Flags().StringVar(&out, "out", "", "write the proof here instead of stdout")
	return cmd
}

type verifyOut struct {
	Valid       bool   `json:"valid"`
	Root        string `json:"root"`
	Files       uint64 `json:"files"`
	Index       uint64 `json:"index"`
	FileSHA256  string `json:"file_sha256"`
	Contributor string `json:"contributor"`
	Weight      uint64 `json:"weight"`
}

func newDataVerifyCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "verify PROOF.json [--root HEX]",
		Short: "Check a dataset inclusion proof offline (exit 1 when it does not verify)",
		Long: `verify checks that the proof's leaf hashes up to its root. With --root it
also checks the root is the one you expect; without it, the proof only
shows membership in the root it names. The chain checks the file count
against the registered dataset's.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var want []byte
			if root != "" {
				var err error
				if want, err = tx.ParseDatasetRoot(root); err != nil {
					return usageErrorf("--root: %v", err)
				}
			}
			p, err := dataset.LoadProof(args[0])
			if err != nil {
				return missingFile(err)
			}
			if want != nil && !strings.EqualFold(hex.EncodeToString(want), p.Root.String()) {
				return fmt.Errorf("%w: the proof is for root %s, not %s", dataset.ErrProof, p.Root, hex.EncodeToString(want))
			}
			if err := p.Verify(); err != nil {
				return err
			}
			res := verifyOut{Valid: true, Root: p.Root.String(), Files: p.Files, Index: p.Index, FileSHA256: p.Leaf.FileSHA256.String(),
				Contributor: p.Leaf.Contributor.String(), Weight: p.Leaf.Weight}
			return printResult(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "ok: leaf %d of %d is in dataset %s (file %s, contributor %s, weight %d)\n",
					res.Index, res.Files, res.Root, res.FileSHA256, res.Contributor, res.Weight)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "the dataset root the proof must be for, hex")
	return cmd
}

// datasetRoot parses a dataset root (hex).
func (r *txRun) datasetRoot(s string) []byte {
	b, err := tx.ParseDatasetRoot(s)
	if err != nil {
		r.fail(usageError{err})
	}
	return b
}

// newDataRegisterCmd is dataRegister's command, reporting the root it registers.
func newDataRegisterCmd() *cobra.Command {
	cmd := dataRegister.command()
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		r := &txRun{cmd: cmd}
		m := dataRegister.build(r, args)
		if r.err != nil {
			return r.err
		}
		r.created.Root = hex.EncodeToString(m[0].GetDataRegister().GetRoot())
		return r.send(m)
	}
	return cmd
}

var (
	dataRegister = txSpec{
		use:   "register MANIFEST|DIR --from OWNER [--name S] [--license S] [--url U]… [--credit-all]",
		short: "Register a dataset on chain by its manifest's root",
		long: `register sends the manifest's root, file count and size. With --credit-all
every contributor in the manifest is credited at once with its summed
weight (at most ` + fmt.Sprint(tx.MaxContributors) + ` contributors); otherwise contributors join one leaf
at a time with 'agora data contribute PROOF' (use one way or the other).`,
		args: 1,
		from: "owner key",
		flags: func(f *pflag.FlagSet) {
			f.String("name", "", "dataset name")
			f.String("license", "", "license of the data (an SPDX id, say)")
			f.StringArray("url", nil, "where the data can be fetched (repeatable)")
			f.Bool("credit-all", false, "credit every manifest contributor now, with its summed weight")
		},
		build: func(r *txRun, a []string) []*tx.Msg {
			m, err := loadManifest(a[0])
			if !r.fail(err) {
				return nil
			}
			msg := &tx.MsgDataRegister{Root: m.Root[:], Name: r.flag("name"), License: r.flag("license"), Size: m.Size, Files: m.Files}
			msg.Urls, _ = r.cmd.Flags().GetStringArray("url")
			if all, _ := r.cmd.Flags().GetBool("credit-all"); all {
				who, err := m.Contributors()
				if !r.fail(err) {
					return nil
				}
				if len(who) > tx.MaxContributors {
					r.usagef("the manifest has %d contributors, --credit-all takes at most %d: credit them with 'agora data contribute'", len(who), tx.MaxContributors)
				}
				for _, c := range who {
					msg.Contributors = append(msg.Contributors, &tx.Contributor{Address: c.Address.Bytes(), Weight: c.Weight})
				}
			}
			r.sign("from")
			return msgs(tx.DataRegister(msg))
		},
	}
	dataContribute = txSpec{
		use:   "contribute PROOF.json --from KEY",
		short: "Credit one leaf's contributor in a registered dataset, by its inclusion proof (anyone may send it)",
		args:  1,
		from:  "key paying the fee (need not be the contributor)",
		build: func(r *txRun, a []string) []*tx.Msg {
			p, err := dataset.LoadProof(a[0])
			if !r.fail(missingFile(err)) {
				return nil
			}
			// A proof that fails here fails on chain too: refuse before the fee.
			if !r.fail(p.Verify()) {
				return nil
			}
			r.sign("from")
			return msgs(tx.DataContribute(p.Root[:], p.Leaf.ToLeaf(), p.Index, p.ProofBytes()))
		},
	}
	dataClaim = oneArgTx("claim ROOT --from CONTRIBUTOR", "Pay a contributor the royalty it has earned from a dataset",
		"contributor key", (*txRun).datasetRoot, tx.DataClaim)
)

type datasetOut struct {
	Root         string   `json:"root"`
	Owner        string   `json:"owner"`
	Name         string   `json:"name"`
	License      string   `json:"license"`
	URLs         []string `json:"urls"`
	Size         uint64   `json:"size"`
	Files        uint64   `json:"files"`
	Contributors uint64   `json:"contributors"`
	RegisteredAt uint64   `json:"registered_at"`
	Seq          uint64   `json:"seq"`
	poolOut
}

func datasetOf(d *tx.Dataset, height int64) datasetOut {
	out := datasetOut{Root: hex.EncodeToString(d.Root), Owner: addrString(d.Owner), Name: d.Name, License: d.License, URLs: d.Urls,
		Size: d.Size, Files: d.Files, Contributors: d.Contributors, RegisteredAt: d.RegisteredAt, Seq: d.Seq, poolOut: poolOf(d.Pool, height)}
	if out.URLs == nil {
		out.URLs = []string{}
	}
	return out
}

func parseRoot(s string) ([]byte, error) {
	b, err := tx.ParseDatasetRoot(s)
	if err != nil {
		return nil, usageError{err}
	}
	return b, nil
}

func newDataShowCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   "show ROOT",
		Short: "Show a registered dataset: owner, size, contributors and its royalty pool",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := parseRoot(args[0])
			if err != nil {
				return err
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (datasetOut, error) {
				d, err := c.Dataset(ctx, root, prove)
				if errors.Is(err, client.ErrNoDataset) {
					return datasetOut{}, notFoundError{err}
				}
				if err != nil {
					return datasetOut{}, err
				}
				h, err := c.Height(ctx)
				if err != nil {
					return datasetOut{}, err
				}
				return datasetOf(d, h), nil
			}, func(w io.Writer, d datasetOut) error {
				fmt.Fprintf(w, "dataset       %s (#%d, registered at block %d)\nname          %s\nlicense       %s\nowner         %s\n",
					d.Root, d.Seq, d.RegisteredAt, d.Name, d.License, d.Owner)
				for _, u := range d.URLs {
					fmt.Fprintf(w, "url           %s\n", u)
				}
				fmt.Fprintf(w, "files         %d (%d bytes)\ncontributors  %d, total weight %d\n", d.Files, d.Size, d.Contributors, d.Shares)
				d.poolOut.text(w)
				return nil
			})
		},
	}, &prove)
}

func newDataListCmd() *cobra.Command {
	return readCommand(&cobra.Command{
		Use:   "list",
		Short: "List registered datasets, in registration order",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, func(ctx context.Context, c *client.Client) ([]datasetOut, error) {
				l, err := c.Datasets(ctx)
				if err != nil {
					return nil, err
				}
				out := make([]datasetOut, len(l.Datasets))
				for i, d := range l.Datasets {
					out[i] = datasetOf(d, l.Height)
				}
				return out, nil
			}, func(w io.Writer, ds []datasetOut) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "#\tROOT\tNAME\tFILES\tCONTRIBUTORS\tEARNED")
				for _, d := range ds {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\n", d.Seq, d.Root, d.Name, d.Files, d.Contributors, agr.Format(d.Earned))
				}
				return tw.Flush()
			})
		},
	}, nil)
}

func newDataPositionCmd() *cobra.Command {
	var prove bool
	return readCommand(&cobra.Command{
		Use:   "position ROOT ADDRESS|KEY",
		Short: "Show a contributor's weight in a dataset and the royalty it can claim now",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := parseRoot(args[0])
			if err != nil {
				return err
			}
			var holder address.Address
			if holder, err = resolveAddress(cmd, args[1]); err != nil {
				return err
			}
			return show(cmd, func(ctx context.Context, c *client.Client) (positionOut, error) {
				p, err := c.DatasetPosition(ctx, root, holder, prove)
				if errors.Is(err, client.ErrNoDataset) {
					return positionOut{}, notFoundError{err}
				}
				if err != nil {
					return positionOut{}, err
				}
				return positionOf(hex.EncodeToString(root), holder, p), nil
			}, func(w io.Writer, p positionOut) error { return p.text(w, "weight") })
		},
	}, &prove)
}
