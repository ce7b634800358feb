package wsproto

import (
	"encoding/json"
	"reflect"
	"testing"
)

var payloadSeeds = []string{
	`{"cpu_percent":12.5,"memory_percent":40,"disk_percent":55,"memory_total":17179869184,"memory_used":6442450944,"disk_total":536870912000,"disk_used":295279001600,"load1":0.42,"running_apps":1}`,
	`{"apps":[{"app_id":7,"cpu_percent":12.5,"mem_bytes":123456789,"mem_limit":536870912,"net_rx_bytes":987654321,"net_tx_bytes":123456789,"net_mbps":1.25,"disk_mbps":0.5}]}`,
	`{"apps":[]}`,
	`{"apps":null}`,
	`{"apps":[{"app_id":1},{"app_id":2,"cpu_percent":1e3}],"apps":[{"cpu_percent":2}]}`,
	`{"CPU_percent":3,"cpu_percent":4}`,
	`{"cpu_percent":1.5e400}`,
	`{"running_apps":1.5}`,
	`{"running_apps":"1"}`,
	`{"pad":"xxxx","extra":{"a":[1,2,{"b":null}]},"load1":-0.0}`,
	`{"app\u005fid":1}`,
	` { "apps" : [ { "app_id" : 9 } ] } `,
	`{"apps":[{"app_id":9}]} x`,
	`{"apps":[{"app_id":9},]}`,
	`{"mem_bytes":-9223372036854775808}`,
	`{"mem_bytes":9223372036854775808}`,
	`{"cpu_percent":0.1,"load1":123456789.123456789,"memory_percent":9007199254740993,"disk_percent":-0}`,
	`{"cpu_percent":0.30000000000000004,"load1":1.0000000000000002220446049250313080847263336181640625}`,
}

// The fast path must read exactly what encoding/json reads, and fail
// exactly when it fails.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mk := range []func() any{func() any { return new(Heartbeat) }, func() any { return new(AppStats) }} {
			got, want := mk(), mk()
			err := DecodePayload(b, got)
			werr := json.Unmarshal(b, want)
			if (err == nil) != (werr == nil) {
				t.Fatalf("DecodePayload(%q, %T) error %v; encoding/json: %v", b, got, err, werr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodePayload(%q) = %+v; encoding/json: %+v", b, got, want)
			}
		}
	})
}

func TestDecodePayloadTakesTheFastPath(t *testing.T) {
	var h Heartbeat
	if !fastObject([]byte(payloadSeeds[0]), func(s *scanner, key []byte) (bool, error) { return h.field(s, key) }) || h.RunningApps != 1 || h.Load1 != 0.42 {
		t.Fatalf("heartbeat fast path: %+v", h)
	}
	var a AppStats
	if !fastObject([]byte(payloadSeeds[1]), func(s *scanner, key []byte) (bool, error) { return a.field(s, key) }) ||
		len(a.Apps) != 1 || a.Apps[0].AppID != 7 || a.Apps[0].DiskMbps != 0.5 {
		t.Fatalf("app_stats fast path: %+v", a)
	}
	for _, slow := range []string{`{"apps":null}`, `{"CPU_percent":3}`, `{"running_apps":1.5}`, `{"app\u005fid":1}`} {
		var h Heartbeat
		var a AppStats
		if fastObject([]byte(slow), func(s *scanner, key []byte) (bool, error) { return h.field(s, key) }) &&
			fastObject([]byte(slow), func(s *scanner, key []byte) (bool, error) { return a.field(s, key) }) {
			t.Errorf("%s took the fast path for both types", slow)
		}
	}
}

func BenchmarkDecodePayload(b *testing.B) {
	stats := []byte(`{"apps":[` + payloadSeeds[1][9:len(payloadSeeds[1])-2] + `,` + payloadSeeds[1][9:len(payloadSeeds[1])-2] + `,` + payloadSeeds[1][9:len(payloadSeeds[1])-2] + `]}`)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(stats)))
		for b.Loop() {
			var a AppStats
			if err := DecodePayload(stats, &a); err != nil || len(a.Apps) != 3 {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(stats)))
		for b.Loop() {
			var a AppStats
			if err := json.Unmarshal(stats, &a); err != nil || len(a.Apps) != 3 {
				b.Fatal(err)
			}
		}
	})
}
