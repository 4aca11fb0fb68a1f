package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/internal/testkit"
	"github.com/agoranet/agora/route"
)

func TestLimiterRateAndConcurrency(t *testing.T) {
	now := time.Unix(1000, 0)
	lm := newLimiter(Limits{Concurrent: 2, PerSecond: 1, Burst: 3})
	lm.now = func() time.Time { return now }
	var releases []func()
	for i := 0; i < 2; i++ {
		rel, _ := lm.acquire("a")
		if rel == nil {
			t.Fatalf("request %d refused", i)
		}
		releases = append(releases, rel)
	}
	if rel, wait := lm.acquire("a"); rel != nil || wait <= 0 {
		t.Fatal("third concurrent request admitted")
	}
	if rel, _ := lm.acquire("b"); rel == nil {
		t.Fatal("another payer was limited by the first")
	}
	releases[0]()
	// One slot free, one token left of the burst of 3.
	rel, _ := lm.acquire("a")
	if rel == nil {
		t.Fatal("freed slot not reusable")
	}
	rel()
	if rel, wait := lm.acquire("a"); rel != nil || wait < 900*time.Millisecond {
		t.Fatalf("burst exhausted but admitted (wait %v)", wait)
	}
	now = now.Add(time.Second)
	if rel, _ := lm.acquire("a"); rel == nil {
		t.Fatal("rate refilled but refused")
	}
}

func TestGatewayAnswers429(t *testing.T) {
	good := realMiner(t, 1)
	gk, _ := testkit.Key(99)
	g := New(Config{Key: gk, Model: "agora-test", Limits: Limits{PerSecond: 0.001, Burst: 1}, Candidates: func(context.Context) ([]route.Candidate, error) { return []route.Candidate{good}, nil }})
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	codes := []int{}
	for range 2 {
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if codes[0] != 200 || codes[1] != 429 {
		t.Fatalf("status codes %v, want [200 429]", codes)
	}
}

// TestChainReadBudgetIsNeverOff: the per-client budget of chain reads
// before a voucher verifies falls back to the payer limits, then to a
// default, but is never unlimited.
func TestChainReadBudgetIsNeverOff(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        Limits
		rate      float64
		burst     int
		readsLeft int
	}{
		{"unset", Limits{}, defaultChainReadsPerSecond, defaultChainReadBurst, defaultChainReadBurst},
		{"from the payer limits", Limits{PerSecond: 2, Burst: 3}, 2, 3, 3},
		{"its own", Limits{PerSecond: 2, Burst: 3, ChainReadsPerSecond: 7, ChainReadBurst: 9}, 7, 9, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.chainReadLimits()
			if got.PerSecond != tc.rate || got.Burst != tc.burst || got.Concurrent != 0 {
				t.Fatalf("%+v → %+v", tc.in, got)
			}
			now := time.Unix(1000, 0)
			lm := newLimiter(got)
			lm.now = func() time.Time { return now }
			reads := 0
			for range 100 {
				// One request's channel and height reads take one token.
				gate := lm.gate("ip:1")
				if gate() != nil {
					break
				}
				if gate() != nil {
					t.Fatal("a request's second read was refused")
				}
				reads++
			}
			if reads != tc.readsLeft {
				t.Fatalf("%d requests read the chain at once, want %d", reads, tc.readsLeft)
			}
			if err := lm.gate("ip:2")(); err != nil {
				t.Fatalf("another client was limited by the first: %v", err)
			}
		})
	}
}
