package engine

import (
	"context"
	"testing"
)

// The portable kernel must give the same tokens and logprobs, bit for bit,
// as the AVX2 one: miners and validators may run on different CPUs.
func TestPortableKernelGivesSameTokens(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2: nothing to compare")
	}
	m, _ := genModel(t, "tiny-llama3", QuantQ8, 4)
	prompt := m.Tokenizer().Encode("where is the station?", false, true)
	o := GenerateOptions{MaxTokens: 16, Temperature: 0.7, TopP: 0.9, Seed: 3, Stop: []int{-1}}
	fast, err := m.Generate(context.Background(), prompt, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	useAVX2 = false
	defer func() { useAVX2 = true }()
	slow, err := m.Generate(context.Background(), prompt, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fast.Tokens {
		if fast.Tokens[i].ID != slow.Tokens[i].ID || fast.Tokens[i].Logprob != slow.Tokens[i].Logprob {
			t.Fatalf("token %d: avx2 %+v, portable %+v", i, fast.Tokens[i], slow.Tokens[i])
		}
	}
}

// withPortableKernels switches every SIMD kernel off (the integer ones,
// attention, element-wise and float dots all require useAVX2) until the
// returned function restores them.
func withPortableKernels() (restore func()) {
	avx2 := useAVX2
	useAVX2 = false
	int8 := withoutVNNI()
	return func() { int8(); useAVX2 = avx2 }
}
