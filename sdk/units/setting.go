package units

import (
	"fmt"
	"time"
)

// DurationSetting reads the duration attribute attr of a config block: raw
// is a ParseDuration string, "" meaning def, and the duration must lie
// between lo and hi. Its errors name attr and say what is accepted, with
// the bounds in FormatDuration's form:
//
//	timeout: invalid duration "10" (…)
//	timeout = "10ms": must be between 100ms and 5m
func DurationSetting(attr, raw string, def, lo, hi time.Duration) (time.Duration, error) {
	if raw == "" {
		return def, nil
	}
	d, err := ParseDuration(raw)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", attr, err)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s = %q: must be between %s and %s", attr, raw, FormatDuration(lo), FormatDuration(hi))
	}
	return d, nil
}

// SizeSetting reads the size attribute attr of a config block as
// DurationSetting reads a duration: raw is a ParseSize string, "" meaning
// def, between lo and hi bytes; the bounds are shown in FormatSize's form:
//
//	max_size = "512B": must be between 1KiB and 64MiB
func SizeSetting(attr, raw string, def, lo, hi int64) (int64, error) {
	if raw == "" {
		return def, nil
	}
	n, err := ParseSize(raw)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", attr, err)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%s = %q: must be between %s and %s", attr, raw, FormatSize(lo), FormatSize(hi))
	}
	return n, nil
}
