package units

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string // substring; empty means success
	}{
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "5s", want: 5 * time.Second},
		{in: "+5s", want: 5 * time.Second},
		{in: "300ms", want: 300 * time.Millisecond},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "90d", want: 90 * Day},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "0.5d", want: 12 * time.Hour},
		{in: "2us", want: 2 * time.Microsecond},
		{in: "2µs", want: 2 * time.Microsecond},
		{in: "2μs", want: 2 * time.Microsecond},
		{in: "7ns", want: 7},
		{in: "1.s", want: time.Second},
		{in: "720h0m0s", want: 720 * time.Hour},
		{in: "1.0000000001s", want: time.Second}, // sub-nanosecond truncated
		{in: "2562047h47m16.854775807s", want: math.MaxInt64},
		{in: "", wantErr: `invalid duration "": empty value; use ns, us, ms, s, m, h or d`},
		{in: "5x", wantErr: `invalid duration "5x": unknown unit "x"; use ns, us, ms, s, m, h or d`},
		{in: "5", wantErr: `invalid duration "5": missing unit; use ns, us, ms, s, m, h or d`},
		{in: "-5s", wantErr: `invalid duration "-5s": negative durations are not allowed`},
		{in: "+", wantErr: "expected a number after the sign"},
		{in: "s", wantErr: `expected a number at "s"`},
		{in: ".s", wantErr: "expected a number"},
		{in: "5 s", wantErr: `unknown unit " s"`},
		{in: "5S", wantErr: `unknown unit "S"`},
		{in: "106752d", wantErr: "out of range"},
		{in: "2562047h47m16.854775808s", wantErr: "out of range"},
		{in: "99999999999999999999999999999999999999999999h", wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{5 * time.Second, "5s"},
		{90 * time.Second, "1m30s"},
		{36 * time.Hour, "1d12h"},
		{720 * time.Hour, "30d"},
		{1500 * time.Millisecond, "1s500ms"},
		{time.Microsecond + 1, "1us1ns"},
		{-time.Minute, "-1m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatDuration(tt.in); got != tt.want {
				t.Fatalf("FormatDuration(%d) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "512MiB", want: 512 * MiB},
		{in: "512mib", want: 512 * MiB},
		{in: "1 GiB", want: GiB},
		{in: "1  GiB", want: GiB},
		{in: "1.5GiB", want: GiB + GiB/2},
		{in: "1.50GiB", want: GiB + GiB/2},
		{in: "10GB", want: 10 * GB},
		{in: "10gb", want: 10 * GB},
		{in: "3KB", want: 3000},
		{in: "3KiB", want: 3072},
		{in: "2TB", want: 2 * TB},
		{in: "2TiB", want: 2 * TiB},
		{in: "7B", want: 7},
		{in: "0.5KiB", want: 512},
		{in: "007MB", want: 7 * MB},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "9223372036854775807B", want: math.MaxInt64},
		{in: "", wantErr: `invalid size "": empty value`},
		{in: "-1MiB", wantErr: `invalid size "-1MiB": negative values are not allowed`},
		{in: "5x", wantErr: `invalid size "5x": unknown unit "x"; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB`},
		{in: "5M", wantErr: `unknown unit "M"`},
		{in: "1.5B", wantErr: `invalid size "1.5B": not a whole number of bytes`},
		{in: "0.1KiB", wantErr: "not a whole number of bytes"},
		{in: "1.", wantErr: "malformed number"},
		{in: ".5GiB", wantErr: "malformed number"},
		{in: "GiB", wantErr: "expected a number before the unit"},
		{in: "1 ", wantErr: "trailing space"},
		{in: " 1", wantErr: "expected a number"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "8388608TiB", wantErr: "too large"},
		{in: "99999999999999999999999999999999999999999999999TiB", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSize(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1023, "1023B"},
		{1000, "1KB"},
		{1024, "1KiB"},
		{536870912, "512MiB"},
		{GiB + GiB/2, "1536MiB"},
		{2048000000, "2048MB"},
		{5 * TiB, "5TiB"},
		{math.MaxInt64, "9223372036854775807B"},
		{-1024, "-1KiB"},
		{math.MinInt64, "-8388608TiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatSize(tt.in); got != tt.want {
				t.Fatalf("FormatSize(%d) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseBandwidth(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "unlimited", want: Unlimited},
		{in: "Unlimited", want: Unlimited},
		{in: "0", want: Unlimited},
		{in: "500bit", want: 500},
		{in: "100kbit", want: 100 * Kbit},
		{in: "10mbit", want: 10 * Mbit},
		{in: "10Mbit", want: 10 * Mbit},
		{in: "10 mbit", want: 10 * Mbit},
		{in: "1gbit", want: Gbit},
		{in: "1.5mbit", want: 1500 * Kbit},
		{in: "2tbit", want: 2 * Tbit},
		{in: "10", wantErr: `invalid bandwidth "10": missing unit; use bit, kbit, mbit, gbit or tbit, or "unlimited"`},
		{in: "10mbps", wantErr: `unknown unit "mbps"`},
		{in: "10MB", wantErr: `unknown unit "MB"`},
		{in: "-1mbit", wantErr: "negative values are not allowed"},
		{in: "1.5bit", wantErr: "not a whole number of bits"},
		{in: "", wantErr: "empty value"},
		{in: "none", wantErr: "expected a number"},
		{in: "9223373tbit", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBandwidth(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseBandwidth(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseBandwidth(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatBandwidth(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "unlimited"},
		{500, "500bit"},
		{1500, "1500bit"},
		{10 * Mbit, "10mbit"},
		{Gbit, "1gbit"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := FormatBandwidth(tt.in)
			if got != tt.want {
				t.Fatalf("FormatBandwidth(%d) = %q; want %q", tt.in, got, tt.want)
			}
			back, err := ParseBandwidth(got)
			if err != nil || back != tt.in {
				t.Fatalf("ParseBandwidth(%q) = %d, %v; want %d", got, back, err, tt.in)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1024", "512MiB", "1 GiB", "1.5GiB", "10gb", "-1", "1.5B", "9223372036854775807", "8388608TiB", "0.0000001TiB", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid size ") {
				t.Fatalf("ParseSize(%q): error %q lacks context", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d: negative", s, n)
		}
		formatted := FormatSize(n)
		back, err := ParseSize(formatted)
		if err != nil || back != n {
			t.Fatalf("ParseSize(FormatSize(%d)) = ParseSize(%q) = %d, %v", n, formatted, back, err)
		}
		if bw, err := ParseBandwidth(s); err == nil {
			if back, err := ParseBandwidth(FormatBandwidth(bw)); err != nil || back != bw {
				t.Fatalf("bandwidth round trip of %q: %d → %q → %d, %v", s, bw, FormatBandwidth(bw), back, err)
			}
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "5s", "1.5h", "90d", "1d12h", "-5s", "5x", "2562047h47m16.854775807s", "1.0000000001s", "µs", ".7000000000088888h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid duration ") {
				t.Fatalf("ParseDuration(%q): error %q lacks context", s, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative", s, d)
		}
		// Everything time.ParseDuration accepts without a sign must agree.
		// The standard library scales fractions through float64, so it may
		// be off by a nanosecond where ours truncates the exact decimal.
		if std, err := time.ParseDuration(s); err == nil && std != d && !(strings.Contains(s, ".") && (std-d == 1 || d-std == 1)) {
			t.Fatalf("ParseDuration(%q) = %v; time.ParseDuration = %v", s, d, std)
		}
		for _, formatted := range []string{FormatDuration(d), d.String()} {
			back, err := ParseDuration(formatted)
			if err != nil || back != d {
				t.Fatalf("ParseDuration(%q) (from %v) = %v, %v", formatted, d, back, err)
			}
		}
	})
}
