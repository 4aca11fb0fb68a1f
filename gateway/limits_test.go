package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
	gk, _ := key(99)
	g := New(Config{Key: gk, Limits: Limits{PerSecond: 0.001, Burst: 1}, Candidates: func(context.Context) ([]Candidate, error) { return []Candidate{good}, nil }})
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
