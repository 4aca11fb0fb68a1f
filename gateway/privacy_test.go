package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/miner"
	"github.com/agoranet/agora/route"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoPromptInLogs sends a canary prompt through gateway and miner, on the
// success path and on failure paths, with every logger at debug level.
func TestNoPromptInLogs(t *testing.T) {
	const canary = "CANARY-7f3e91-the-secret-prompt"
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	mk, _ := testkit.Key(1)
	good := builtinMiner(t, miner.Config{Hotkey: mk, MaxConcurrent: 1, Logger: logger})
	broken := fakeMiner(t, 2, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	// Routing draws by score: weighted this heavily, the broken miner is
	// tried first (but for a 1e-18 chance), so every routed request walks
	// the failure path the check is about.
	broken.Score = 1e9

	gk, _ := testkit.Key(99)
	g := New(Config{Key: gk, Model: "agora-test", Attempts: 3, Logger: logger, Candidates: func(context.Context) ([]route.Candidate, error) {
		return []route.Candidate{broken, good}, nil
	}})
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	for _, body := range []string{
		`{"model":"agora-test","messages":[{"role":"user","content":"` + canary + `"}],"max_tokens":4}`,
		`{"model":"agora-test","messages":[{"role":"user","content":"` + canary + `"}],"max_tokens":4,"stream":true}`,
		`{"model":"agora-test","prompt":"` + canary + `","max_tokens":4}`,
		`{"model":"agora-test","messages":[{"role":"wizard","content":"` + canary + `"}]}`, // rejected
		`{"model":"agora-test","messages":[{"role":"user","content":"` + canary + `"}],"max_tokens":99999}`,
	} {
		path := "/v1/chat/completions"
		if strings.Contains(body, `"prompt"`) {
			path = "/v1/completions"
		}
		resp := post(t, srv, path, body, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !strings.Contains(logs.String(), "miner failed") {
		t.Fatal("the failure path did not log at all; the check would prove nothing")
	}
	if strings.Contains(logs.String(), canary) {
		t.Fatalf("a prompt reached the logs:\n%s", logs.String())
	}
}
