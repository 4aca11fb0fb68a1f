package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"
)

// TestForwardBitsPinned pins, for generated models of every quantization
// Generate writes, the model file's id and the bits of the logits of a
// batched prompt and of decode steps after it. The figures were recorded on
// amd64; `make test-arm64` runs this test on arm64 under qemu, with and
// without the dot-product extension, and here it runs with every amd64
// kernel set. So it fails if a kernel, a compiler's fused multiply-add or a
// math routine makes one CPU compute other bits than another — validators
// on different machines must agree on what a model says — and if a change
// to the arithmetic goes in without the new figures (re-record them only
// when the change is meant to move the bits, and say so).
func TestForwardBitsPinned(t *testing.T) {
	cases := []struct {
		shape      string
		quant      Quant
		file, bits string
	}{
		{"tiny", QuantF32, "fe2b734138ec2d8d55f109454f348ea358885efef1ab8c2c6c4191f7cd0afcaa", "38e32f4ef6e9254f75f643e4"},
		{"tiny-spm", QuantF16, "f31dfe7712d171fbfe45cd9f61503a936eb01d2cebe5ba79cbafb73562110f42", "909413c9793bdabb50d16cba"},
		{"tiny", QuantQ8, "7170d61a9e3547619dcf8a2721728540f8373f97ebd5288ee49a2ab676b5b80f", "bc4c77e9dad8a1c9508e43d4"},
		{"tiny", QuantQ4KM, "00ac9b31f3248f75925b8a92c412bfe09cf2915bd46517085c4b3d3076f6d719", "af6a2276ccefe7ce0b0b6efe"}, // 64 columns: Q5_0 and Q8_0 fallbacks
		{"tiny-k", QuantQ4KM, "1da2a445b4ce4864723282da220eab58d0cc3472521fe8846850486765146b76", "fcff121ba4345246e4c6b763"},
		{"tiny-qwen2", QuantQ6K, "5887fa8246daf38d85b26e9cbbd6efa6bcaf5f53159886930288fa6aa265842a", "560f5e759539f55f33811e78"},
		{"tiny-llama3", QuantQ8, "7dfb89532e0a4608d0d42acb7535c6d879026c976bb4ccdc917a0fba8aa32e3a", "63768b710b7c2ba78d4bd758"},
	}
	kernels := []struct {
		name string
		set  func() func()
	}{
		{"fastest", func() func() { return func() {} }},
		{"portable", withPortableKernels},
	}
	for _, c := range cases {
		t.Run(c.shape+"/"+string(c.quant), func(t *testing.T) {
			m, path := genModel(t, c.shape, c.quant, 7)
			id, err := FileID(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range kernels {
				restore := k.set()
				bits := logitBits(t, m)
				restore()
				if bits != c.bits || id != c.file {
					t.Errorf("%s kernels: file %s logits %s\nwant file %s logits %s", k.name, id, bits, c.file, c.bits)
				}
			}
		})
	}
}

// logitBits hashes the logits of a 13-token prompt taken in one batch
// (every position's) and of 3 decode steps after it.
func logitBits(t *testing.T, m *Model) string {
	t.Helper()
	v := m.cfg.Vocab
	prompt := make([]int, 13)
	for i := range prompt {
		prompt[i] = (i*131 + 5) % v
	}
	s := m.newState(32)
	h := sha256.New()
	put := func(f []float32) {
		var b [4]byte
		for _, x := range f {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
			h.Write(b[:])
		}
	}
	put(forwardAll(t, m, s, prompt))
	for i := range 3 {
		if err := m.forward(s, []int{(i*37 + 1) % v}, nil); err != nil {
			t.Fatal(err)
		}
		put(s.logits[:v])
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
