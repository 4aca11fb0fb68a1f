package engine

import "golang.org/x/sys/cpu"

// The K-quant kernels, one per type (4: Q4_K, 5: Q5_K, 6: Q6_K), instruction
// set (matmul_k_amd64.s: AVX-512 VNNI; matmul_k_avx2_amd64.s: AVX2) and
// token count (x8: a whole activation tile; x1: one token of one).

//go:noescape
func k4x8VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)

//go:noescape
func k5x8VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)

//go:noescape
func k6x8VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)

//go:noescape
func k4x1VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)

//go:noescape
func k5x1VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)

//go:noescape
func k6x1VNNI(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)

//go:noescape
func k4x8AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)

//go:noescape
func k5x8AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)

//go:noescape
func k6x8AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32, stride int)

//go:noescape
func k4x1AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)

//go:noescape
func k5x1AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)

//go:noescape
func k6x1AVX2(w, h, sc *byte, nb int, q *int8, d *float32, clo, chi *int32, sum *float32, out *float32)

// kF16C: the kernels widen the records' f16 super-scales with VCVTPH2PS.
// Every CPU with AVX2 or AVX-512 that we know of has it, but it is a CPUID
// bit of its own; without it the portable kernel runs.
var kF16C = cpu.X86.HasF16C

// kTile is kTilePortable with the fastest kernel the CPU has: VNNI, else
// AVX2 (the switches q8Tile takes, so withoutVNNI and withQ8AVX2 pick the
// K kernels too).
func kTile(p *kPacked, g, nb int, a *q8Acts, tile, k int, out []float32, stride int) {
	vnni := useVNNI && useAVX2
	if !(vnni || useQ8AVX2 && useAVX2) || !kF16C || nb == 0 || nb%kSubs != 0 {
		kTilePortable(p, g, nb, a, tile, k, out, stride)
		return
	}
	// The assembly trusts its lengths: check them here once. Every kernel
	// reads nb blocks of nibbles, plane and activations and nb/8 records.
	w := p.w[g*nb*kNibBytes:][:nb*kNibBytes]
	h := p.h[g*nb*p.high:][:nb*p.high]
	sc := p.sc[g*(nb/kSubs)*p.rec:][:nb/kSubs*p.rec]
	hp := &w[0] // Q4_K has no plane, and its kernels never read one
	if p.high > 0 {
		hp = &h[0]
	}
	clo, chi := p.corrections(a)
	base := tile * nb * q8TileTokens
	q := a.q[base*q8Block:][:nb*q8TileBlock]
	d := a.d[base:][:nb*q8TileTokens]
	lo := clo[base:][:nb*q8TileTokens]
	hi := chi[base:][:nb*q8TileTokens]
	sum := a.sum[base:][:nb*q8TileTokens]
	_ = out[(k-1)*stride+q8Rows-1]
	kind := 4
	switch {
	case p.q6:
		kind = 6
	case p.high > 0:
		kind = 5
	}
	if k == q8TileTokens {
		s := 4 * stride
		switch {
		case vnni && kind == 4:
			k4x8VNNI(&w[0], hp, &sc[0], nb, &q[0], &d[0], &lo[0], &hi[0], &sum[0], &out[0], s)
		case vnni && kind == 5:
			k5x8VNNI(&w[0], hp, &sc[0], nb, &q[0], &d[0], &lo[0], &hi[0], &sum[0], &out[0], s)
		case vnni:
			k6x8VNNI(&w[0], hp, &sc[0], nb, &q[0], &d[0], &lo[0], &hi[0], &sum[0], &out[0], s)
		case kind == 4:
			k4x8AVX2(&w[0], hp, &sc[0], nb, &q[0], &d[0], &lo[0], &hi[0], &sum[0], &out[0], s)
		case kind == 5:
			k5x8AVX2(&w[0], hp, &sc[0], nb, &q[0], &d[0], &lo[0], &hi[0], &sum[0], &out[0], s)
		default:
			k6x8AVX2(&w[0], hp, &sc[0], nb, &q[0], &d[0], &lo[0], &hi[0], &sum[0], &out[0], s)
		}
		return
	}
	for j := range k {
		o := &out[j*stride]
		switch {
		case vnni && kind == 4:
			k4x1VNNI(&w[0], hp, &sc[0], nb, &q[j*q8Block], &d[j], &lo[j], &hi[j], &sum[j], o)
		case vnni && kind == 5:
			k5x1VNNI(&w[0], hp, &sc[0], nb, &q[j*q8Block], &d[j], &lo[j], &hi[j], &sum[j], o)
		case vnni:
			k6x1VNNI(&w[0], hp, &sc[0], nb, &q[j*q8Block], &d[j], &lo[j], &hi[j], &sum[j], o)
		case kind == 4:
			k4x1AVX2(&w[0], hp, &sc[0], nb, &q[j*q8Block], &d[j], &lo[j], &hi[j], &sum[j], o)
		case kind == 5:
			k5x1AVX2(&w[0], hp, &sc[0], nb, &q[j*q8Block], &d[j], &lo[j], &hi[j], &sum[j], o)
		default:
			k6x1AVX2(&w[0], hp, &sc[0], nb, &q[j*q8Block], &d[j], &lo[j], &hi[j], &sum[j], o)
		}
	}
}
