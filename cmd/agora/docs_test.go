package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCLIDocsCurrent regenerates docs/cli.md through the hidden command a
// maintainer runs and fails if the committed file differs, so the reference
// never drifts from the commands.
func TestCLIDocsCurrent(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"docs", "cli"})
	if err := root.Execute(); err != nil {
		t.Fatalf("agora docs cli: %v", err)
	}
	want, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(cliDocsPath)))
	if err != nil {
		t.Fatalf("read %s: %v", cliDocsPath, err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("%s is stale: regenerate it with `go run ./cmd/agora docs cli --out %s` from the repository root", cliDocsPath, cliDocsPath)
	}
}

// TestCLIDocsCoverEveryCommand checks the reference names every visible
// command and none of the hidden ones.
func TestCLIDocsCoverEveryCommand(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd()
	if err := writeCLIDocs(&out, root); err != nil {
		t.Fatal(err)
	}
	doc := out.String()
	var check func(c *cobra.Command)
	check = func(c *cobra.Command) {
		for _, s := range visible(c) {
			if !strings.Contains(doc, "\n## "+s.CommandPath()+"\n") {
				t.Errorf("no section for %q", s.CommandPath())
			}
			check(s)
		}
	}
	check(root)
	if strings.Contains(doc, "## agora docs") {
		t.Error("the hidden docs command is documented")
	}
}
