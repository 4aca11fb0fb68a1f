package gateway

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// openAISDKVersion is pinned: the newest line that runs on Debian's Node 20.
const openAISDKVersion = "6.30.1"

// TestOpenAINodeSDK drives the gateway with the official openai npm package,
// installed by the test itself (cached between runs).
func TestOpenAINodeSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("installs the openai npm package")
	}
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node and npm are required in CI (.ci/run installs them)")
		}
		t.Skip("node/npm not installed")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = t.TempDir()
	}
	dir := filepath.Join(cache, "agora-test", "openai-sdk-"+openAISDKVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "--silent", "openai@"+openAISDKVersion)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install openai@%s: %v\n%s", openAISDKVersion, err, out)
		}
	}
	script, err := os.ReadFile("testdata/openai_sdk_e2e.mjs")
	if err != nil {
		t.Fatal(err)
	}
	scriptPath := filepath.Join(dir, "e2e.mjs")
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := gatewayFor(t, realMiner(t, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, scriptPath)
	cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+srv.URL+"/v1", "OPENAI_API_KEY=agora-devnet")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("SDK script: %v\n%s\n%s", err, out, stderr)
	}
	var res struct {
		Plain    string
		Streamed string
		Chunks   int
		Usage    struct{ Completion_tokens int }
		Models   []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("SDK output %q: %v", out, err)
	}
	if res.Chunks == 0 || res.Plain != res.Streamed || res.Usage.Completion_tokens == 0 || len(res.Models) != 1 || res.Models[0] != "agora-test" {
		t.Fatalf("SDK saw %+v", res)
	}
}
