package wsproto

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func sealed(t testing.TB, key []byte, dir Direction, typ string, seq uint64, payload string) *Envelope {
	e := &Envelope{Type: typ, Seq: seq, TS: time.Now().UnixMilli(), Payload: json.RawMessage(payload)}
	Seal(key, dir, e)
	return e
}

func TestSealOpen(t *testing.T) {
	key := EnvelopeKey("whk_test")
	e := sealed(t, key, WorkerToCore, TypeHeartbeat, 1, `{"cpu_percent":12.5,"running_apps":3}`)
	frame, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if err := Open(key, WorkerToCore, got); err != nil {
		t.Fatalf("Open: %v", err)
	}
	// Reflection: the same bytes presented as coming from the other side fail.
	if err := Open(key, CoreToWorker, got); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("reflected message: %v", err)
	}
	// Another worker's key fails.
	if err := Open(EnvelopeKey("whk_other"), WorkerToCore, got); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("wrong key: %v", err)
	}
	// Every signed field is covered.
	for name, mut := range map[string]func(*Envelope){
		"type":     func(e *Envelope) { e.Type = TypeJobResult },
		"seq":      func(e *Envelope) { e.Seq++ },
		"ts":       func(e *Envelope) { e.TS++ },
		"reply_to": func(e *Envelope) { e.ReplyTo = 9 },
		"payload":  func(e *Envelope) { e.Payload = json.RawMessage(`{"cpu_percent":99,"running_apps":3}`) },
		"mac":      func(e *Envelope) { e.MAC = strings.Repeat("A", len(e.MAC)) },
		"short":    func(e *Envelope) { e.MAC = e.MAC[:10] },
		"garbage":  func(e *Envelope) { e.MAC = "!!!" },
	} {
		c := *got
		mut(&c)
		if err := Open(key, WorkerToCore, &c); !errors.Is(err, ErrBadMAC) {
			t.Errorf("tampered %s: %v", name, err)
		}
	}
}

func TestDecodeShapes(t *testing.T) {
	for name, frame := range map[string]string{
		"not json":      `{`,
		"no type":       `{"seq":1,"ts":1,"mac":"x"}`,
		"seq zero":      `{"type":"heartbeat","seq":0,"ts":1,"mac":"x"}`,
		"no mac":        `{"type":"heartbeat","seq":1,"ts":1}`,
		"array payload": `{"type":"heartbeat","seq":1,"ts":1,"mac":"x","payload":[1]}`,
		"overlong type": `{"type":"` + strings.Repeat("a", 65) + `","seq":1,"ts":1,"mac":"x"}`,
		"too large":     `{"type":"x","seq":1,"ts":1,"mac":"x","payload":{"a":"` + strings.Repeat("a", MaxFrameSize) + `"}}`,
	} {
		if _, err := Decode([]byte(frame)); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v, want ErrBadFrame", name, err)
		}
	}
}

func TestCheckClock(t *testing.T) {
	now := time.Now()
	for d, ok := range map[time.Duration]bool{0: true, 59 * time.Second: true, -59 * time.Second: true,
		61 * time.Second: false, -61 * time.Second: false, 24 * time.Hour: false} {
		if err := CheckClock(now.Add(d).UnixMilli(), now); (err == nil) != ok {
			t.Errorf("skew %v: %v", d, err)
		}
	}
}

func TestWindow(t *testing.T) {
	var w Window
	steps := []struct {
		seq  uint64
		want bool
	}{
		{0, false}, {1, true}, {1, false}, {3, true}, {2, true}, {2, false}, {300, true},
		{300 - 255, true}, {300 - 256, false}, {299, true}, {299, false}, {1000, true}, {999, true}, {300, false},
	}
	for i, s := range steps {
		if got := w.Accept(s.seq); got != s.want {
			t.Fatalf("step %d: Accept(%d) = %v, want %v", i, s.seq, got, s.want)
		}
	}
}

// The bitmap window agrees with a map-based reference on random traffic.
func TestWindowMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		var w Window
		seen := map[uint64]bool{}
		var max uint64
		for i := 0; i < 5000; i++ {
			seq := max + uint64(r.IntN(80)) + 1
			if r.IntN(3) == 0 && max > 0 {
				seq = max - uint64(r.IntN(400))
			}
			want := seq > 0 && !seen[seq] && (seq > max || max-seq < ReplayWindow)
			if got := w.Accept(seq); got != want {
				t.Fatalf("trial %d step %d: Accept(%d) with max %d = %v, want %v", trial, i, seq, max, got, want)
			}
			if want {
				seen[seq] = true
				if seq > max {
					max = seq
				}
			}
		}
	}
}

func BenchmarkDecodeOpen(b *testing.B) {
	key := EnvelopeKey("whk_bench")
	payload := `{"apps":[` + strings.Repeat(`{"app_id":123456,"cpu_percent":12.5,"mem_bytes":123456789,"mem_limit":536870912,"net_rx_bytes":987654321,"net_tx_bytes":123456789,"net_mbps":1.5,"disk_mbps":0.2},`, 3)
	payload = payload[:len(payload)-1] + `]}`
	frame, _ := Encode(sealed(b, key, WorkerToCore, TypeAppStats, 1, payload))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		if err := Open(key, WorkerToCore, e); err != nil {
			b.Fatal(err)
		}
	}
}
