package engine

import "golang.org/x/sys/cpu"

// useAVX512Attention and useAVX2Attention select the attention kernels;
// tests switch them off to compare each with the next and with the
// portable code. x/sys/cpu also checks that the OS saves the registers.
var (
	useAVX512Attention = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL
	useAVX2Attention   = cpu.X86.HasAVX2
)

// attnScoresSIMD runs attnScoresPortable in assembly when the CPU allows,
// reporting whether it did. rows comes from attnRows, so the kernels may
// read rows 0..len(att)-1 of len(q) floats at stride kvDim.
func attnScoresSIMD(att, q, rows []float32, kvDim int, scale float32) bool {
	switch {
	case useAVX512Attention:
		attnScoresAVX512(att, q, rows, kvDim, scale)
	case useAVX2Attention && len(q)%16 == 0:
		attnScoresAVX2(att, q, rows, kvDim, scale)
	default:
		return false
	}
	return true
}

// attnValuesSIMD runs attnValuesPortable in assembly when the CPU allows,
// reporting whether it did; rows as for attnScoresSIMD.
func attnValuesSIMD(o, att, rows []float32, kvDim int) bool {
	switch {
	case useAVX512Attention:
		attnValuesAVX512(o, att, rows, kvDim)
	case useAVX2Attention && len(o)%16 == 0:
		attnValuesAVX2(o, att, rows, kvDim)
	default:
		return false
	}
	return true
}

// The kernels need len(att) ≥ 1 and len(q), len(o) ≥ 1; the AVX2 ones
// also need a multiple of 16. See attention_amd64.s.

//go:noescape
func attnScoresAVX512(att, q, rows []float32, kvDim int, scale float32)

//go:noescape
func attnValuesAVX512(o, att, rows []float32, kvDim int)

//go:noescape
func attnScoresAVX2(att, q, rows []float32, kvDim int, scale float32)

//go:noescape
func attnValuesAVX2(o, att, rows []float32, kvDim int)
