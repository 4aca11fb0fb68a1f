// Package gguf reads and writes GGUF v3 files, the model format of llama.cpp.
//
// The reader maps the file into memory and checks every length, count and
// offset against the file's size before using it: a truncated or hostile file
// gets an error, never a panic or an out-of-bounds read.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
)

// Magic opens every GGUF file ("GGUF" little-endian).
const Magic = 0x46554747

// Version is the format version this package reads and writes.
const Version = 3

// DefaultAlignment applies when general.alignment is absent.
const DefaultAlignment = 32

// ValueType is a metadata value's type tag.
type ValueType uint32

// Metadata value types.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

// TensorType is a ggml tensor element type.
type TensorType uint32

// Tensor types this package knows the layout of (ggml's type ids). The
// reader can parse any of them; which ones a consumer can compute with is
// up to it.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
	Q4_1 TensorType = 3
	Q5_0 TensorType = 6
	Q5_1 TensorType = 7
	Q8_0 TensorType = 8
	Q8_1 TensorType = 9
	Q2_K TensorType = 10
	Q3_K TensorType = 11
	Q4_K TensorType = 12
	Q5_K TensorType = 13
	Q6_K TensorType = 14
	Q8_K TensorType = 15
	I8   TensorType = 24
	I16  TensorType = 25
	I32  TensorType = 26
	I64  TensorType = 27
	F64  TensorType = 28
	BF16 TensorType = 30
)

var typeInfo = map[TensorType]struct {
	name         string
	elems, bytes int
}{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2}, BF16: {"BF16", 1, 2}, F64: {"F64", 1, 8},
	I8: {"I8", 1, 1}, I16: {"I16", 1, 2}, I32: {"I32", 1, 4}, I64: {"I64", 1, 8},
	Q4_0: {"Q4_0", 32, 18}, Q4_1: {"Q4_1", 32, 20}, Q5_0: {"Q5_0", 32, 22}, Q5_1: {"Q5_1", 32, 24},
	Q8_0: {"Q8_0", 32, 34}, Q8_1: {"Q8_1", 32, 36},
	Q2_K: {"Q2_K", 256, 84}, Q3_K: {"Q3_K", 256, 110}, Q4_K: {"Q4_K", 256, 144},
	Q5_K: {"Q5_K", 256, 176}, Q6_K: {"Q6_K", 256, 210}, Q8_K: {"Q8_K", 256, 292},
}

func (t TensorType) String() string {
	if ti, ok := typeInfo[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("type%d", uint32(t))
}

// BlockSize gives a type's quantization block: elements per block and bytes
// per block.
func (t TensorType) BlockSize() (elems, bytes int, ok bool) {
	ti, ok := typeInfo[t]
	return ti.elems, ti.bytes, ok
}

// Value is a decoded metadata value: uint8…int64 as int64/uint64, floats as
// float64, bool, string, or []Value for arrays (with ArrayType set).
type Value struct {
	Type      ValueType
	ArrayType ValueType
	U         uint64
	I         int64
	F         float64
	B         bool
	S         string
	Array     []Value
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor.
type TensorInfo struct {
	Name   string
	Dims   []uint64 // ne[0] is the innermost (row length)
	Type   TensorType
	Offset uint64 // relative to the data section
	Size   uint64 // bytes
}

// Elements is the tensor's element count.
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// File is an open GGUF file.
type File struct {
	Version   uint32
	KV        []KV
	Tensors   []TensorInfo
	Alignment uint64
	data      []byte // the whole file (mapped)
	dataStart uint64
	unmap     func() error
	byKey     map[string]int
	byName    map[string]int
}

// Limits on what a file may declare, so a hostile header cannot make the
// reader allocate without bound.
const (
	maxKVs        = 1 << 20
	maxTensors    = 1 << 20
	maxDims       = 4
	maxStringLen  = 1 << 26
	maxArrayLen   = 1 << 26
	maxArrayDepth = 4
)

// ErrFormat wraps every malformed-file error.
var ErrFormat = errors.New("invalid GGUF")

// Open maps path and parses its header.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, unmap, err := mapFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	g, err := Parse(data)
	if err != nil {
		unmap()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	g.unmap = unmap
	return g, nil
}

// Close unmaps the file; tensor data must not be used afterwards.
func (g *File) Close() error {
	if g.unmap == nil {
		return nil
	}
	err := g.unmap()
	g.unmap, g.data = nil, nil
	return err
}

type reader struct {
	b   []byte
	off uint64
}

func (r *reader) need(n uint64) error {
	if n > uint64(len(r.b)) || r.off > uint64(len(r.b))-n {
		return fmt.Errorf("%w: truncated at byte %d (need %d more)", ErrFormat, r.off, n)
	}
	return nil
}

func (r *reader) u32() (uint32, error) {
	if err := r.need(4); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

func (r *reader) u64() (uint64, error) {
	if err := r.need(8); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v, nil
}

func (r *reader) str() (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	if n > maxStringLen {
		return "", fmt.Errorf("%w: string of %d bytes", ErrFormat, n)
	}
	if err := r.need(n); err != nil {
		return "", err
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s, nil
}

func (r *reader) value(t ValueType, depth int) (Value, error) {
	v := Value{Type: t}
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		if err := r.need(1); err != nil {
			return v, err
		}
		b := r.b[r.off]
		r.off++
		v.U, v.I = uint64(b), int64(int8(b))
		v.B = t == TypeBool && b != 0
	case TypeUint16, TypeInt16:
		if err := r.need(2); err != nil {
			return v, err
		}
		x := binary.LittleEndian.Uint16(r.b[r.off:])
		r.off += 2
		v.U, v.I = uint64(x), int64(int16(x))
	case TypeUint32, TypeInt32:
		x, err := r.u32()
		if err != nil {
			return v, err
		}
		v.U, v.I = uint64(x), int64(int32(x))
	case TypeFloat32:
		x, err := r.u32()
		if err != nil {
			return v, err
		}
		v.F = float64(math.Float32frombits(x))
	case TypeUint64, TypeInt64:
		x, err := r.u64()
		if err != nil {
			return v, err
		}
		v.U, v.I = x, int64(x)
	case TypeFloat64:
		x, err := r.u64()
		if err != nil {
			return v, err
		}
		v.F = math.Float64frombits(x)
	case TypeString:
		s, err := r.str()
		if err != nil {
			return v, err
		}
		v.S = s
	case TypeArray:
		if depth >= maxArrayDepth {
			return v, fmt.Errorf("%w: arrays nested too deep", ErrFormat)
		}
		et, err := r.u32()
		if err != nil {
			return v, err
		}
		n, err := r.u64()
		if err != nil {
			return v, err
		}
		if n > maxArrayLen || n > uint64(len(r.b)) {
			return v, fmt.Errorf("%w: array of %d elements", ErrFormat, n)
		}
		v.ArrayType = ValueType(et)
		v.Array = make([]Value, 0, min(n, 1<<16))
		for range n {
			e, err := r.value(ValueType(et), depth+1)
			if err != nil {
				return v, err
			}
			v.Array = append(v.Array, e)
		}
	default:
		return v, fmt.Errorf("%w: unknown value type %d", ErrFormat, t)
	}
	return v, nil
}

// Parse reads a GGUF image held in memory.
func Parse(data []byte) (*File, error) {
	r := &reader{b: data}
	magic, err := r.u32()
	if err != nil {
		return nil, err
	}
	if magic != Magic {
		return nil, fmt.Errorf("%w: bad magic %#x", ErrFormat, magic)
	}
	ver, err := r.u32()
	if err != nil {
		return nil, err
	}
	if ver != Version {
		return nil, fmt.Errorf("%w: version %d (this reader supports %d)", ErrFormat, ver, Version)
	}
	nt, err := r.u64()
	if err != nil {
		return nil, err
	}
	nkv, err := r.u64()
	if err != nil {
		return nil, err
	}
	if nt > maxTensors || nkv > maxKVs {
		return nil, fmt.Errorf("%w: %d tensors, %d metadata entries", ErrFormat, nt, nkv)
	}
	g := &File{Version: ver, byKey: map[string]int{}, byName: map[string]int{}, data: data, Alignment: DefaultAlignment}
	for range nkv {
		k, err := r.str()
		if err != nil {
			return nil, err
		}
		t, err := r.u32()
		if err != nil {
			return nil, err
		}
		v, err := r.value(ValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", k, err)
		}
		if _, dup := g.byKey[k]; dup {
			return nil, fmt.Errorf("%w: metadata key %q twice", ErrFormat, k)
		}
		g.byKey[k] = len(g.KV)
		g.KV = append(g.KV, KV{k, v})
	}
	if a, ok := g.Uint("general.alignment"); ok {
		if a == 0 || a&(a-1) != 0 || a > 1<<16 {
			return nil, fmt.Errorf("%w: alignment %d", ErrFormat, a)
		}
		g.Alignment = a
	}
	for range nt {
		var ti TensorInfo
		if ti.Name, err = r.str(); err != nil {
			return nil, err
		}
		nd, err := r.u32()
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > maxDims {
			return nil, fmt.Errorf("%w: tensor %q has %d dims", ErrFormat, ti.Name, nd)
		}
		elems := uint64(1)
		for range nd {
			d, err := r.u64()
			if err != nil {
				return nil, err
			}
			if d == 0 || d > 1<<40 || elems > math.MaxUint64/d {
				return nil, fmt.Errorf("%w: tensor %q dimension %d", ErrFormat, ti.Name, d)
			}
			elems *= d
			ti.Dims = append(ti.Dims, d)
		}
		t, err := r.u32()
		if err != nil {
			return nil, err
		}
		ti.Type = TensorType(t)
		if ti.Offset, err = r.u64(); err != nil {
			return nil, err
		}
		be, bb, ok := ti.Type.BlockSize()
		if !ok {
			return nil, fmt.Errorf("%w: tensor %q has unsupported type %s", ErrFormat, ti.Name, ti.Type)
		}
		if ti.Dims[0]%uint64(be) != 0 {
			return nil, fmt.Errorf("%w: tensor %q row of %d is not a multiple of the %s block %d", ErrFormat, ti.Name, ti.Dims[0], ti.Type, be)
		}
		ti.Size = elems / uint64(be) * uint64(bb)
		if _, dup := g.byName[ti.Name]; dup {
			return nil, fmt.Errorf("%w: tensor %q twice", ErrFormat, ti.Name)
		}
		g.byName[ti.Name] = len(g.Tensors)
		g.Tensors = append(g.Tensors, ti)
	}
	g.dataStart = alignUp(r.off, g.Alignment)
	for _, ti := range g.Tensors {
		if ti.Offset%g.Alignment != 0 {
			return nil, fmt.Errorf("%w: tensor %q offset %d not aligned to %d", ErrFormat, ti.Name, ti.Offset, g.Alignment)
		}
		end := g.dataStart + ti.Offset + ti.Size
		if end < g.dataStart || end > uint64(len(data)) || g.dataStart+ti.Offset < g.dataStart {
			return nil, fmt.Errorf("%w: tensor %q [%d, %d) lies outside the %d-byte file", ErrFormat, ti.Name, g.dataStart+ti.Offset, end, len(data))
		}
	}
	return g, nil
}

func alignUp(x, a uint64) uint64 { return (x + a - 1) / a * a }

// Get returns a metadata value.
func (g *File) Get(key string) (Value, bool) {
	i, ok := g.byKey[key]
	if !ok {
		return Value{}, false
	}
	return g.KV[i].Value, true
}

// Uint returns an unsigned integer metadata value.
func (g *File) Uint(key string) (uint64, bool) {
	v, ok := g.Get(key)
	if !ok {
		return 0, false
	}
	switch v.Type {
	case TypeUint8, TypeUint16, TypeUint32, TypeUint64:
		return v.U, true
	case TypeInt8, TypeInt16, TypeInt32, TypeInt64:
		if v.I >= 0 {
			return uint64(v.I), true
		}
	}
	return 0, false
}

// Float returns a float metadata value.
func (g *File) Float(key string) (float64, bool) {
	v, ok := g.Get(key)
	if !ok || (v.Type != TypeFloat32 && v.Type != TypeFloat64) {
		return 0, false
	}
	return v.F, true
}

// String returns a string metadata value.
func (g *File) String(key string) (string, bool) {
	v, ok := g.Get(key)
	if !ok || v.Type != TypeString {
		return "", false
	}
	return v.S, true
}

// Strings returns a string array metadata value.
func (g *File) Strings(key string) ([]string, bool) {
	v, ok := g.Get(key)
	if !ok || v.Type != TypeArray || v.ArrayType != TypeString {
		return nil, false
	}
	out := make([]string, len(v.Array))
	for i, e := range v.Array {
		out[i] = e.S
	}
	return out, true
}

// Tensor finds a tensor by name.
func (g *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := g.byName[name]
	if !ok {
		return nil, false
	}
	return &g.Tensors[i], true
}

// Data returns a tensor's bytes (a view into the mapped file).
func (g *File) Data(t *TensorInfo) []byte {
	start := g.dataStart + t.Offset
	return g.data[start : start+t.Size : start+t.Size]
}

// Release tells the system this process is done with a tensor's bytes (its
// caller has copied what it needs), so the mapped pages stop counting
// toward the process's memory. Reading the tensor afterwards still works:
// the pages come back from the file. Without a mapping it does nothing.
func (g *File) Release(t *TensorInfo) {
	if g.unmap == nil {
		return
	}
	releasePages(g.Data(t))
}

// Keys lists metadata keys in sorted order.
func (g *File) Keys() []string {
	out := make([]string, 0, len(g.KV))
	for _, kv := range g.KV {
		out = append(out, kv.Key)
	}
	sort.Strings(out)
	return out
}
