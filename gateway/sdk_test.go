package gateway

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/agoranet/agora/internal/openaisdk"
)

// TestOpenAINodeSDK drives the gateway with the official openai npm package.
func TestOpenAINodeSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("installs the openai npm package")
	}
	script, err := os.ReadFile("testdata/openai_sdk_e2e.mjs")
	if err != nil {
		t.Fatal(err)
	}
	srv := gatewayFor(t, realMiner(t, 1))
	out := openaisdk.Run(t, script, "OPENAI_BASE_URL="+srv.URL+"/v1", "OPENAI_API_KEY=agora-devnet")
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
