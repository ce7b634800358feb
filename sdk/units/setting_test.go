package units

import (
	"strings"
	"testing"
	"time"
)

func TestDurationSetting(t *testing.T) {
	const def, lo, hi = 10 * time.Second, 100 * time.Millisecond, 5 * time.Minute
	tests := []struct {
		raw     string
		want    time.Duration
		wantErr string
	}{
		{"", def, ""},
		{"100ms", lo, ""},
		{"5m", hi, ""},
		{"1m30s", 90 * time.Second, ""},
		{"0", 0, `timeout = "0": must be between 100ms and 5m`},
		{"10ms", 0, `timeout = "10ms": must be between 100ms and 5m`},
		{"5m1s", 0, `timeout = "5m1s": must be between 100ms and 5m`},
		{"1d", 0, `timeout = "1d": must be between 100ms and 5m`},
		{"10", 0, `timeout: invalid duration "10"`},
		{"-1s", 0, `timeout: invalid duration "-1s"`},
		{" 1s", 0, `timeout: invalid duration`},
	}
	for _, tt := range tests {
		got, err := DurationSetting("timeout", tt.raw, def, lo, hi)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("DurationSetting(%q) = %v, %v; want %v", tt.raw, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("DurationSetting(%q) = %v, %v; want an error with %q", tt.raw, got, err, tt.wantErr)
		}
	}
}

func TestSizeSetting(t *testing.T) {
	const def, lo, hi = MiB, KiB, 64 * MiB
	tests := []struct {
		raw     string
		want    int64
		wantErr string
	}{
		{"", def, ""},
		{"1KiB", lo, ""},
		{"64MiB", hi, ""},
		{"2048", 2 * KiB, ""},
		{"512B", 0, `max_size = "512B": must be between 1KiB and 64MiB`},
		{"1GiB", 0, `max_size = "1GiB": must be between 1KiB and 64MiB`},
		{"lots", 0, `max_size: invalid size "lots"`},
		{"-1KiB", 0, `max_size: invalid size "-1KiB"`},
	}
	for _, tt := range tests {
		got, err := SizeSetting("max_size", tt.raw, def, lo, hi)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("SizeSetting(%q) = %v, %v; want %v", tt.raw, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("SizeSetting(%q) = %v, %v; want an error with %q", tt.raw, got, err, tt.wantErr)
		}
	}
}
