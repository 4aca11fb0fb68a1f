package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agoranet/agora/agent"
	"github.com/agoranet/agora/e2e"
	"github.com/agoranet/agora/internal/testkit"
)

// A request naming a model the subnet does not serve gets OpenAI's 404
// model_not_found and never reaches a miner; the served name and the alias
// Agora's own clients send are routed.
func TestUnknownModelIsNotFound(t *testing.T) {
	var hits atomic.Int32
	busy := fakeMiner(t, 1, func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	srv := gatewayFor(t, busy)
	minerKey, _ := testkit.Key(1)
	ek, err := e2e.DeriveKey(minerKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _, err := e2e.Seal(ek.PublicKey(), busy.Hotkey, "gpt-4o", 4, false, []byte(chatBody))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, path, body string }{
		{"chat", "/v1/chat/completions", strings.Replace(chatBody, `"agora-test"`, `"gpt-4o"`, 1)},
		{"completions", "/v1/completions", `{"model":"gpt-4o","prompt":"hi","max_tokens":4}`},
		{"sealed", "/v1/chat/completions", string(sealed)},
	} {
		resp := post(t, srv, c.path, c.body, nil)
		var e struct {
			Error map[string]any `json:"error"`
		}
		err := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusNotFound || e.Error["type"] != "invalid_request_error" ||
			e.Error["param"] != "model" || e.Error["code"] != "model_not_found" || !strings.Contains(e.Error["message"].(string), "gpt-4o") {
			t.Fatalf("%s: %d %v %v", c.name, resp.StatusCode, e, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("an unknown model reached a miner %d times", hits.Load())
	}
	for _, model := range []string{"agora-test", ModelAlias, agent.Model} {
		resp := post(t, srv, "/v1/chat/completions", strings.Replace(chatBody, `"agora-test"`, `"`+model+`"`, 1), nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s: %d, want the miner's 503", model, resp.StatusCode)
		}
	}
	if hits.Load() != 3 {
		t.Fatalf("served names reached a miner %d times, want 3", hits.Load())
	}
}
