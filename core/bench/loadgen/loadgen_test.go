package loadgen

import (
	"strings"
	"testing"
	"time"
)

func TestParseWorkers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Worker
		err  string
	}{
		{in: "whk_a\nwhk_b 7\n\n  whk_c   12  \n", want: []Worker{{APIKey: "whk_a"}, {APIKey: "whk_b", AppID: 7}, {APIKey: "whk_c", AppID: 12}}},
		{in: "", want: nil},
		{in: "whk_a 1 2", err: `line 1: want "KEY [APP_ID]"`},
		{in: "whk_a\nwhk_b x", err: `line 2: app id "x" is not a positive integer`},
		{in: "whk_a -3", err: "not a positive integer"},
	} {
		got, err := ParseWorkers(strings.NewReader(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseWorkers(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("ParseWorkers(%q) = %v, %v", tc.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParseWorkers(%q)[%d] = %+v, want %+v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func TestSpecCheck(t *testing.T) {
	one := []Worker{{APIKey: "whk_a"}}
	withApp := []Worker{{APIKey: "whk_a", AppID: 1}}
	for _, tc := range []struct {
		name string
		spec Spec
		err  string
	}{
		{"no workers", Spec{}, "no workers"},
		{"flood without duration", Spec{Workers: withApp, Flood: true}, "-flood needs -duration"},
		{"logs without apps", Spec{Workers: one, LogRate: 1000, LogLine: 100, LogMessage: 1000}, "need an app id"},
		{"line too long", Spec{Workers: withApp, LogRate: 1000, LogLine: 9000, LogMessage: 9000}, "log lines must be"},
		{"ok", Spec{Workers: withApp, Flood: true, Duration: time.Second, PayloadSize: 512}, ""},
	} {
		err := tc.spec.check()
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: check() = %v, want %q", tc.name, err, tc.err)
		}
	}
	s := Spec{Workers: make([]Worker, 12000)}
	for i := range s.Workers {
		s.Workers[i].APIKey = "whk"
	}
	if err := s.check(); err != nil || s.SourceAddrs != 3 || s.Connecting != 64 {
		t.Fatalf("defaults for 12,000 workers: %v, %d source addresses, %d connecting", err, s.SourceAddrs, s.Connecting)
	}
}

func TestFloodPayloadsAreAboutTheirSize(t *testing.T) {
	stats, hb := floodPayloads(42, 512)
	for name, p := range map[string][]byte{"app_stats": stats, "heartbeat": hb} {
		if n := len(p); n < 400 || n > 600 {
			t.Errorf("%s payload is %d bytes, want about 512: %s", name, n, p)
		}
	}
}
