package cache

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ByteSize is a number of bytes read from YAML or text as a whole number
// (67108864) or a number with a unit: B, KiB, MiB, GiB, TiB (powers of
// 1024) or KB, MB, GB, TB (powers of 1000), with or without a space, units
// case-insensitive ("64MiB", "1.5 GiB", "100MB").
type ByteSize int64

// units maps each accepted unit, lower-cased, to its size in bytes.
var units = map[string]float64{
	"":    1,
	"b":   1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// ParseByteSize reads s as a ByteSize (see ByteSize for the forms).
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool {
		return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+'
	})
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if n, err := strconv.ParseInt(num, 10, 64); err == nil && (unit == "" || unit == "b") {
		return ByteSize(n), nil // exact, whatever its size
	}
	mult, ok := units[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("`%s` is not a byte size (write e.g. 67108864, 64MiB, 512KiB or 100MB)", s)
	}
	b := math.Round(f * mult)
	if math.Abs(b) >= math.MaxInt64 {
		return 0, fmt.Errorf("`%s` is too large a byte size", s)
	}
	return ByteSize(b), nil
}

// UnmarshalText reads b as ParseByteSize does.
func (s *ByteSize) UnmarshalText(b []byte) error {
	v, err := ParseByteSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalYAML reads a scalar as ParseByteSize does. A bad value is a
// *yaml.TypeError carrying the node's line, like the decoder's own
// complaints.
func (s *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: a byte size must be a number or a string such as 64MiB", n.Line)}}
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, err)}}
	}
	*s = v
	return nil
}

// String returns s in the largest binary unit that divides it ("64MiB"),
// or in bytes ("1000B").
func (s ByteSize) String() string {
	for _, u := range []struct {
		name string
		size ByteSize
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}
