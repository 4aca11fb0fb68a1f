package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/agoranet/agora/internal/testkit"
)

func TestEngine(t *testing.T) {
	path := testkit.Model(t, "tiny", 1)
	res, err := Engine(context.Background(), EngineConfig{Model: path, PromptTokens: 4, DecodeTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The first token comes from the prompt pass, so decode counts the rest.
	if res.PromptTokens != 4 || res.DecodeTokens != 2 || res.PromptPerSec <= 0 || res.DecodePerSec <= 0 || res.FileMiB <= 0 || res.Threads < 1 {
		t.Fatalf("result %+v", res)
	}
}

func TestEngineRefusesLengthsBeyondContext(t *testing.T) {
	path := testkit.Model(t, "tiny", 1)
	_, err := Engine(context.Background(), EngineConfig{Model: path, PromptTokens: 1 << 20, DecodeTokens: 2})
	var ce *ContextError
	if !errors.As(err, &ce) || ce.Prompt != 1<<20 || ce.Decode != 2 || ce.Context <= 0 {
		t.Fatalf("err %v, want a ContextError", err)
	}
	if _, err := Engine(context.Background(), EngineConfig{Model: path, PromptTokens: 1, DecodeTokens: 1}); err == nil {
		t.Fatal("one decode token accepted")
	}
}

func TestGatewayRefusesNoClients(t *testing.T) {
	if _, err := Gateway(context.Background(), GatewayConfig{Concurrency: 0, Duration: 1}); err == nil {
		t.Fatal("zero concurrency accepted")
	}
}
