package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// cliDocsPath is where the generated command reference lives, relative to
// the repository root; TestCLIDocsCurrent keeps it in step with the code.
const cliDocsPath = "docs/cli.md"

// newDocsCmd is hidden: it is a maintainer's tool, not part of the CLI a user
// learns, and docs/cli.md is its output.
func newDocsCmd() *cobra.Command {
	docs := &cobra.Command{
		Use:    "docs",
		Short:  "Write reference documentation generated from the code",
		Hidden: true,
	}
	cli := &cobra.Command{
		Use:   "cli",
		Short: "Write the markdown reference of every agora command (docs/cli.md)",
		Long: `Write the markdown reference of every agora command, built from the
commands' own metadata (use lines, descriptions, flags and their defaults).
From the repository root: go run ./cmd/agora docs cli --out docs/cli.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, _ := cmd.Flags().GetString("out")
			if out == "" || out == "-" {
				return writeCLIDocs(cmd.OutOrStdout(), cmd.Root())
			}
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("write CLI docs: %w", err)
			}
			w := bufio.NewWriter(f)
			err = writeCLIDocs(w, cmd.Root())
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("write CLI docs to %s: %w", out, err)
			}
			return nil
		},
	}
	cli.Flags().String("out", "-", "file to write (- for standard output)")
	docs.AddCommand(cli)
	return docs
}

// writeCLIDocs renders root and every visible command under it, depth
// first in the order cobra lists them (alphabetical), so the output depends
// only on the code. Machine-specific defaults (the user's home directory)
// are written the way a reader's machine would show them.
func writeCLIDocs(w io.Writer, root *cobra.Command) error {
	d := &docWriter{w: w, global: root.PersistentFlags()}
	d.printf("# agora command reference\n\n")
	d.printf("Generated from the commands themselves by `go run ./cmd/agora docs cli --out %s`; "+
		"edit the commands, not this file (a test fails when it is stale).\n\n", cliDocsPath)
	intro := strings.TrimSpace(root.Long)
	if intro == "" {
		intro = root.Short
	}
	d.printf("%s\n\n", intro)
	d.printf("Exit codes: %d ok, %d failed, %d bad command line, %d not found.\n\n", exitOK, exitError, exitUsage, exitNotFound)
	d.printf("## Global flags\n\nEvery command takes these.\n\n")
	d.flagTable(root.PersistentFlags())
	d.printf("## Commands\n\n")
	for _, c := range visible(root) {
		d.toc(c, 0)
	}
	d.printf("\n")
	for _, c := range visible(root) {
		d.command(c)
	}
	return d.err
}

type docWriter struct {
	w      io.Writer
	global *pflag.FlagSet
	err    error
}

func (d *docWriter) printf(format string, args ...any) {
	if d.err == nil {
		_, d.err = fmt.Fprintf(d.w, format, args...)
	}
}

// visible lists c's subcommands a user can run: not hidden, and not the
// help and completion commands cobra adds by itself.
func visible(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, s := range c.Commands() {
		if s.Hidden || s.Name() == "help" || s.Name() == "completion" || s.Deprecated != "" {
			continue
		}
		out = append(out, s)
	}
	return out
}

// anchor is the heading id GitHub gives "## agora tx transfer".
func anchor(c *cobra.Command) string {
	return strings.ReplaceAll(strings.ToLower(c.CommandPath()), " ", "-")
}

func (d *docWriter) toc(c *cobra.Command, depth int) {
	d.printf("%s- [`%s`](#%s) — %s\n", strings.Repeat("  ", depth), c.CommandPath(), anchor(c), c.Short)
	for _, s := range visible(c) {
		d.toc(s, depth+1)
	}
}

func (d *docWriter) command(c *cobra.Command) {
	d.printf("## %s\n\n%s\n\n", c.CommandPath(), c.Short)
	if c.Runnable() {
		d.printf("```\n%s\n```\n\n", c.UseLine())
	}
	if c.Long != "" {
		d.printf("%s\n\n", strings.TrimSpace(c.Long))
	}
	if len(c.Aliases) > 0 {
		d.printf("Aliases: `%s`\n\n", strings.Join(c.Aliases, "`, `"))
	}
	if c.Example != "" {
		d.printf("Examples:\n\n```sh\n%s\n```\n\n", strings.TrimRight(c.Example, "\n "))
	}
	if subs := visible(c); len(subs) > 0 {
		d.printf("Subcommands:\n\n")
		for _, s := range subs {
			d.printf("- [`%s`](#%s) — %s\n", s.CommandPath(), anchor(s), s.Short)
		}
		d.printf("\n")
	}
	// Flags of this command and those inherited from parents other than the
	// root; the root's are the global flags listed once at the top.
	flags := pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
	add := func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" || d.global.Lookup(f.Name) != nil {
			return
		}
		flags.AddFlag(f)
	}
	c.NonInheritedFlags().VisitAll(add)
	c.InheritedFlags().VisitAll(add)
	if flags.HasFlags() {
		d.printf("Flags:\n\n")
		d.flagTable(flags)
	}
	for _, s := range visible(c) {
		d.command(s)
	}
}

func (d *docWriter) flagTable(fs *pflag.FlagSet) {
	d.printf("| flag | default | meaning |\n|---|---|---|\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		name := "--" + f.Name
		if f.Shorthand != "" {
			name = "-" + f.Shorthand + ", " + name
		}
		typ, usage := pflag.UnquoteUsage(f)
		if typ != "" {
			name += " " + typ
		}
		def := portableDefault(f.DefValue)
		switch {
		case f.Value.Type() == "bool" && def == "false", def == "[]", def == "":
			def = ""
		default:
			def = "`" + def + "`"
		}
		d.printf("| `%s` | %s | %s |\n", name, def, cell(usage))
	})
	d.printf("\n")
}

// portableDefault writes a default that names this machine's home
// directory (or $AGORA_HOME) as every reader's machine would show it.
func portableDefault(v string) string {
	if v == "" {
		return v
	}
	if v == defaultHome() {
		return "~/.agora"
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" && h != string(filepath.Separator) {
		if v == h {
			return "~"
		}
		if rest, ok := strings.CutPrefix(v, h+string(filepath.Separator)); ok {
			return "~/" + rest
		}
	}
	return v
}

// cell makes text safe inside a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}
