// Package openaisdk runs scripts against the official openai npm package in
// tests, installing it (at a pinned version, cached between runs) first.
package openaisdk

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Version is pinned: the newest line that runs on Debian's Node 20.
const Version = "6.30.1"

// Run installs the SDK if needed and runs script (an ES module importing
// 'openai') with env added, returning its standard output. Without node and
// npm it skips the test, except in CI, where .ci/run installs them.
func Run(tb testing.TB, script []byte, env ...string) []byte {
	tb.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("node and npm are required in CI (.ci/run installs them)")
		}
		tb.Skip("node/npm not installed")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = tb.TempDir()
	}
	dir := filepath.Join(cache, "agora-test", "openai-sdk-"+Version)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "--silent", "openai@"+Version)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("npm install openai@%s: %v\n%s", Version, err, out)
		}
	}
	f, err := os.CreateTemp(dir, "script-*.mjs")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(script); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, f.Name())
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		tb.Fatalf("SDK script: %v\n%s\n%s", err, out, stderr)
	}
	return out
}
