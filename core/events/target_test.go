package events

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		sink    string
		webhook int64
		ok      bool
	}{
		{"sink:ops", "ops", 0, true},
		{"sink:team.chat-1", "team.chat-1", 0, true},
		{"webhook:42", "", 42, true},
		{"sink:", "", 0, false},
		{"webhook:", "", 0, false},
		{"webhook:0", "", 0, false},
		{"webhook:-3", "", -3, false},
		{"webhook:9223372036854775808", "", 0, false},
		{"webhook:1x", "", 0, false},
		{"ops", "", 0, false},
		{"", "", 0, false},
	}
	for _, tt := range tests {
		sink, hook, ok := parseTarget(tt.in)
		if ok != tt.ok || ok && (sink != tt.sink || hook != tt.webhook) {
			t.Errorf("parseTarget(%q) = %q, %d, %v; want %q, %d, %v", tt.in, sink, hook, ok, tt.sink, tt.webhook, tt.ok)
		}
	}
}

// FuzzParseTarget: every target the dispatcher writes reads back as itself,
// and no input makes the parser accept a sink and a webhook at once.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"sink:ops", "webhook:7", "webhook:", "sink:", "x"} {
		f.Add(s, int64(7))
	}
	f.Fuzz(func(t *testing.T, s string, id int64) {
		sink, hook, ok := parseTarget(s)
		if ok && (sink == "") == (hook == 0) {
			t.Fatalf("parseTarget(%q) = %q, %d: want exactly one of them", s, sink, hook)
		}
		if ok && sink != "" && sinkPrefix+sink != s {
			t.Fatalf("sink %q does not read back as %q", sink, s)
		}
		if id > 0 {
			if _, got, ok := parseTarget(webhookTarget(id)); !ok || got != id {
				t.Fatalf("webhook %d read back as %d, %v", id, got, ok)
			}
		}
		if name := strings.TrimSpace(s); name != "" && !strings.ContainsAny(name, ":") {
			if got, _, ok := parseTarget(sinkPrefix + name); !ok || got != name {
				t.Fatalf("sink %q read back as %q, %v", name, got, ok)
			}
		}
	})
}
