// Package units parses and formats the human-friendly quantities used in
// WiseHosting configuration: durations with a day unit ("7d", "1d12h"), byte
// sizes ("512MiB", "1.5 GiB") and bandwidths in bits per second ("10mbit").
//
// Every parser rejects negative values and overflow, and its errors quote the
// input and say what is accepted, so they can be shown to operators as is.
// DurationSetting and SizeSetting read one config attribute, with its
// default and bounds, naming the attribute in their errors.
// The package uses the standard library only.
package units

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Day is the length of the "d" duration unit: 24 hours. Calendar days that
// are longer or shorter because of daylight saving are not taken into
// account.
const Day = 24 * time.Hour

// Binary and decimal byte multiples accepted by ParseSize.
const (
	KB int64 = 1000
	MB       = 1000 * KB
	GB       = 1000 * MB
	TB       = 1000 * GB

	KiB int64 = 1 << 10
	MiB       = 1 << 20
	GiB       = 1 << 30
	TiB       = 1 << 40
)

// Bandwidth multiples accepted by ParseBandwidth, in bits per second. As in
// tc(8), "kbit" is 1000 bits per second.
const (
	Bit  int64 = 1
	Kbit       = 1000 * Bit
	Mbit       = 1000 * Kbit
	Gbit       = 1000 * Mbit
	Tbit       = 1000 * Gbit
)

// Unlimited is the bandwidth ParseBandwidth returns for "unlimited" and "0":
// no limit at all.
const Unlimited int64 = 0

const (
	durationUnits  = "use ns, us, ms, s, m, h or d"
	sizeUnits      = "use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
	bandwidthUnits = `use bit, kbit, mbit, gbit or tbit, or "unlimited"`
)

var durationUnitMap = map[string]time.Duration{
	"ns": time.Nanosecond,
	"us": time.Microsecond,
	"µs": time.Microsecond, // U+00B5, what time.Duration.String prints
	"μs": time.Microsecond, // U+03BC
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  Day,
}

// ParseDuration parses a duration such as "300ms", "1.5h", "90d" or "1d12h":
// the syntax of time.ParseDuration plus a "d" unit of 24 hours. "0" alone
// is accepted; every other number needs a unit. Negative durations and
// durations beyond time.Duration's range are rejected.
func ParseDuration(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %w", s, err)
	}
	return d, nil
}

func parseDuration(s string) (time.Duration, error) {
	switch {
	case s == "":
		return 0, errors.New("empty value; " + durationUnits + `, e.g. "30s" or "7d"`)
	case s == "0":
		return 0, nil
	case s[0] == '-':
		return 0, errors.New("negative durations are not allowed")
	case s[0] == '+':
		s = s[1:]
		if s == "" {
			return 0, errors.New("expected a number after the sign")
		}
	}
	var total uint64
	for s != "" {
		// Number: digits, optionally followed by a fraction.
		intPart, rest := leadingDigits(s)
		var frac string
		if strings.HasPrefix(rest, ".") {
			frac, rest = leadingDigits(rest[1:])
			if frac == "" && intPart == "" {
				return 0, errors.New(`expected a number such as "5" or "1.5" before the unit`)
			}
		}
		if intPart == "" && frac == "" {
			return 0, fmt.Errorf("expected a number at %q", s)
		}
		// Unit: everything up to the next digit or dot.
		i := 0
		for i < len(rest) && rest[i] != '.' && (rest[i] < '0' || rest[i] > '9') {
			i++
		}
		unitName := rest[:i]
		rest = rest[i:]
		if unitName == "" {
			return 0, errors.New("missing unit; " + durationUnits)
		}
		unit, ok := durationUnitMap[unitName]
		if !ok {
			return 0, fmt.Errorf("unknown unit %q; %s", unitName, durationUnits)
		}
		v, err := scaleDecimal(intPart, frac, uint64(unit), true)
		if err != nil || v > math.MaxInt64 || total > math.MaxInt64-v {
			return 0, errors.New("out of range; the maximum is about 106751d")
		}
		total += v
		s = rest
	}
	return time.Duration(total), nil
}

// FormatDuration formats d compactly with the units ParseDuration accepts,
// largest first: 0 → "0s", 36h → "1d12h", 90s → "1m30s", 1500ms → "1s500ms".
// Negative durations get a leading "-" (which ParseDuration rejects).
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	u := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		u = -u // two's complement: correct even for math.MinInt64
	}
	for _, p := range []struct {
		unit uint64
		name string
	}{
		{uint64(Day), "d"}, {uint64(time.Hour), "h"}, {uint64(time.Minute), "m"},
		{uint64(time.Second), "s"}, {uint64(time.Millisecond), "ms"},
		{uint64(time.Microsecond), "us"}, {1, "ns"},
	} {
		if n := u / p.unit; n > 0 {
			b.WriteString(strconv.FormatUint(n, 10))
			b.WriteString(p.name)
			u -= n * p.unit
		}
	}
	return b.String()
}

type unit struct {
	name string
	mult int64
}

// sizeUnitList is ordered largest first; FormatSize relies on it.
var sizeUnitList = []unit{
	{"TiB", TiB}, {"TB", TB}, {"GiB", GiB}, {"GB", GB},
	{"MiB", MiB}, {"MB", MB}, {"KiB", KiB}, {"KB", KB}, {"B", 1},
}

var bandwidthUnitList = []unit{
	{"tbit", Tbit}, {"gbit", Gbit}, {"mbit", Mbit}, {"kbit", Kbit}, {"bit", Bit},
}

// ParseSize parses a size in bytes: a plain integer ("1048576"), or a number
// and a unit among B, KB, MB, GB, TB (powers of 1000) and KiB, MiB, GiB, TiB
// (powers of 1024), optionally separated by spaces; units are
// case-insensitive. A fractional number is accepted when it makes a whole
// number of bytes ("1.5GiB" but not "1.5B"). Negative sizes and sizes beyond
// math.MaxInt64 are rejected.
func ParseSize(s string) (int64, error) {
	n, err := parseQuantity(s, sizeUnitList, sizeUnits, true, "bytes")
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, err)
	}
	return n, nil
}

// FormatSize formats n bytes with the largest unit that divides it exactly,
// so that ParseSize(FormatSize(n)) == n: 536870912 → "512MiB", 1000 → "1KB",
// 1023 → "1023B", 0 → "0B". Negative sizes get a leading "-" (which
// ParseSize rejects).
func FormatSize(n int64) string {
	return formatQuantity(n, sizeUnitList, "0B")
}

// ParseBandwidth parses a bandwidth in bits per second: a number and a unit
// among bit, kbit, mbit, gbit and tbit (powers of 1000, as in tc(8)),
// case-insensitive and optionally separated by spaces: "10mbit", "100kbit",
// "1gbit", "500bit". "unlimited" and "0" both return Unlimited (0), which
// means no limit. Fractions are accepted when they make a whole number of
// bits ("1.5mbit").
func ParseBandwidth(s string) (int64, error) {
	if strings.EqualFold(s, "unlimited") || s == "0" {
		return Unlimited, nil
	}
	n, err := parseQuantity(s, bandwidthUnitList, bandwidthUnits, false, "bits")
	if err != nil {
		return 0, fmt.Errorf("invalid bandwidth %q: %w", s, err)
	}
	return n, nil
}

// FormatBandwidth formats bits per second as ParseBandwidth reads them:
// 0 → "unlimited", 10000000 → "10mbit", 1500 → "1500bit".
func FormatBandwidth(bps int64) string {
	if bps == Unlimited {
		return "unlimited"
	}
	return formatQuantity(bps, bandwidthUnitList, "0bit")
}

func formatQuantity(n int64, list []unit, zero string) string {
	if n == 0 {
		return zero
	}
	sign := ""
	u := uint64(n)
	if n < 0 {
		sign = "-"
		u = -u
	}
	for _, un := range list {
		if u%uint64(un.mult) == 0 {
			return sign + strconv.FormatUint(u/uint64(un.mult), 10) + un.name
		}
	}
	// Unreachable: the last unit of every list is 1.
	return sign + strconv.FormatUint(u, 10)
}

// parseQuantity reads "<number>[ ]<unit>". bareOK says whether a number
// without unit is accepted (as the base unit); what names the base unit in
// errors.
func parseQuantity(s string, list []unit, accepted string, bareOK bool, what string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty value; " + accepted)
	}
	if s[0] == '-' {
		return 0, errors.New("negative values are not allowed")
	}
	intPart, rest := leadingDigits(s)
	var frac string
	if strings.HasPrefix(rest, ".") {
		frac, rest = leadingDigits(rest[1:])
		if frac == "" || intPart == "" {
			return 0, errors.New(`malformed number; write it like "512" or "1.5"`)
		}
	}
	if intPart == "" {
		return 0, fmt.Errorf("expected a number before the unit; %s", accepted)
	}
	name := strings.TrimLeft(rest, " ")
	mult := int64(0)
	if name == "" {
		if !bareOK {
			return 0, errors.New("missing unit; " + accepted)
		}
		if rest != "" {
			return 0, errors.New("trailing space")
		}
		mult = 1
	} else {
		for _, un := range list {
			if strings.EqualFold(name, un.name) {
				mult = un.mult
				break
			}
		}
		if mult == 0 {
			return 0, fmt.Errorf("unknown unit %q; %s", name, accepted)
		}
	}
	v, err := scaleDecimal(intPart, frac, uint64(mult), false)
	if errors.Is(err, errInexact) {
		return 0, fmt.Errorf("not a whole number of %s", what)
	}
	if err != nil || v > math.MaxInt64 {
		return 0, errors.New("too large; the maximum is 9223372036854775807 " + what)
	}
	return int64(v), nil
}

// leadingDigits splits s after its leading ASCII digits.
func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// maxDigits bounds the work done on absurd inputs: no value within int64
// needs more significant digits than this.
const maxDigits = 40

var (
	errOverflow = errors.New("overflow")
	errInexact  = errors.New("inexact")
)

// scaleDecimal computes intPart.frac × mult. It returns errOverflow when the
// result does not fit in a uint64 and, unless truncate is set, errInexact
// when it is not a whole number; with truncate the fractional remainder is
// dropped (as time.ParseDuration does below a nanosecond).
func scaleDecimal(intPart, frac string, mult uint64, truncate bool) (uint64, error) {
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if len(intPart) > maxDigits {
		return 0, errOverflow
	}
	if len(frac) > maxDigits {
		if !truncate {
			return 0, errInexact
		}
		frac = frac[:maxDigits]
	}
	num, ok := new(big.Int).SetString("0"+intPart+frac, 10)
	if !ok {
		return 0, errInexact // unreachable: only digits get here
	}
	num.Mul(num, new(big.Int).SetUint64(mult))
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if !q.IsUint64() {
		return 0, errOverflow
	}
	if r.Sign() != 0 && !truncate {
		return 0, errInexact
	}
	return q.Uint64(), nil
}
