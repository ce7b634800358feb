package wsproto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The worked example of PROTOCOL.md §6.4. The values were computed with
// this package and cross-checked with an independent HKDF/HMAC (Python's
// hmac and hashlib); the test pins them both in the code and in the
// document.
const (
	exampleAPIKey      = "whk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	exampleEnvKeyHex   = "688781c12a49db897086603f2bba146c4f8daa409fdae022fdc7c1375b01fff5"
	examplePayload     = `{"cpu_percent":12.5,"memory_percent":40,"disk_percent":55.5,"running_apps":3}`
	exampleTS          = 1767225600000 // 2026-01-01T00:00:00Z
	exampleInputLen    = 111
	exampleMACHex      = "b2f05f832dfe3c63ee910f4789fa15dc80b9051f08191144f3b45f3708d39edd"
	exampleMAC         = "svBfgy3-PGPukQ9HifoV3IC5BR8IGRFE87RfNwjTnt0"
	exampleReflected   = "NUSJcxBEFNsG1vIzZHOsS6zm86_y-ok6YOodalLneo4"
	exampleFrame       = `{"type":"heartbeat","seq":1,"ts":1767225600000,"payload":` + examplePayload + `,"mac":"` + exampleMAC + `"}`
	exampleErrPayload  = `{"code":"unknown_type","message":"no such message type"}`
	exampleErrInputLen = 86
	exampleErrMAC      = "I2u3GwchR9pZfvbDjdJYgtvR3LtnTMf3F2F3nozxcrg"
	exampleErrFrame    = `{"type":"error","seq":7,"ts":1767225600250,"reply_to":3,"payload":` + exampleErrPayload + `,"mac":"` + exampleErrMAC + `"}`
)

func readProtocolDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProtocolWorkedExample(t *testing.T) {
	doc := readProtocolDoc(t)
	mustContain := func(what, s string) {
		t.Helper()
		if !strings.Contains(doc, s) {
			t.Errorf("PROTOCOL.md lacks the %s:\n%s", what, s)
		}
	}

	key := EnvelopeKey(exampleAPIKey)
	if got := hex.EncodeToString(key); got != exampleEnvKeyHex {
		t.Fatalf("envelope key %s, want %s", got, exampleEnvKeyHex)
	}
	mustContain("API key", "\n"+exampleAPIKey+"\n")
	mustContain("envelope key", "\n"+exampleEnvKeyHex+"\n")

	// Worker → core heartbeat.
	e := &Envelope{Type: TypeHeartbeat, Seq: 1, TS: exampleTS, Payload: json.RawMessage(examplePayload)}
	in := AppendSigningInput(nil, WorkerToCore, e)
	wantIn := "wh1\nw\nheartbeat\n1\n1767225600000\n0\n" + examplePayload
	if string(in) != wantIn || len(in) != exampleInputLen {
		t.Fatalf("signing input %q (%d bytes), want %q", in, len(in), wantIn)
	}
	mustContain("signing input", "```text\n"+wantIn+"\n```")
	mustContain("signing input length", strconv.Itoa(exampleInputLen)+" bytes")
	Seal(key, WorkerToCore, e)
	mac, _ := base64.RawURLEncoding.DecodeString(e.MAC)
	if e.MAC != exampleMAC || hex.EncodeToString(mac) != exampleMACHex {
		t.Fatalf("MAC %s (%x), want %s", e.MAC, mac, exampleMAC)
	}
	mustContain("MAC in hex", "\n"+exampleMACHex+"\n")
	frame, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(frame) != exampleFrame {
		t.Fatalf("frame %s, want %s", frame, exampleFrame)
	}
	mustContain("frame", "```json\n"+exampleFrame+"\n```")
	got, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if err := Open(key, WorkerToCore, got); err != nil {
		t.Fatal(err)
	}

	// The same envelope signed for the other direction.
	r := *e
	Seal(key, CoreToWorker, &r)
	if r.MAC != exampleReflected {
		t.Fatalf("reflected MAC %s, want %s", r.MAC, exampleReflected)
	}
	mustContain("reflected MAC", "`"+exampleReflected+"`")

	// Core → worker error with reply_to.
	ee := &Envelope{Type: TypeError, Seq: 7, TS: exampleTS + 250, ReplyTo: 3, Payload: json.RawMessage(exampleErrPayload)}
	ein := AppendSigningInput(nil, CoreToWorker, ee)
	wantEin := "wh1\nc\nerror\n7\n1767225600250\n3\n" + exampleErrPayload
	if string(ein) != wantEin || len(ein) != exampleErrInputLen {
		t.Fatalf("error signing input %q (%d bytes)", ein, len(ein))
	}
	mustContain("error signing input", "```text\n"+wantEin+"\n```")
	mustContain("error signing input length", strconv.Itoa(exampleErrInputLen)+" bytes")
	Seal(key, CoreToWorker, ee)
	if ee.MAC != exampleErrMAC {
		t.Fatalf("error MAC %s, want %s", ee.MAC, exampleErrMAC)
	}
	eframe, _ := Encode(ee)
	if string(eframe) != exampleErrFrame {
		t.Fatalf("error frame %s, want %s", eframe, exampleErrFrame)
	}
	mustContain("error frame", "```json\n"+exampleErrFrame+"\n```")

	// The example date is what the document says.
	if ts := time.UnixMilli(exampleTS).UTC().Format(time.RFC3339); ts != "2026-01-01T00:00:00Z" {
		t.Fatal(ts)
	}
	mustContain("example time", "2026-01-01T00:00:00Z")
}

// formatThousands renders n with commas, as the document writes sizes.
func formatThousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Every constant, type, code and JSON field of the protocol appears in the
// document with its value.
func TestProtocolDocCoversDefinitions(t *testing.T) {
	doc := readProtocolDoc(t)
	for what, s := range map[string]string{
		"EnvelopePurpose":          "`" + EnvelopePurpose + "`",
		"EnvelopeKeySize":          "length = " + strconv.Itoa(EnvelopeKeySize) + " bytes",
		"MaxFrameSize":             formatThousands(MaxFrameSize) + " bytes (`MaxFrameSize`",
		"MaxClockSkew":             "±" + strconv.Itoa(int(MaxClockSkew/time.Second)) + " s (`MaxClockSkew`)",
		"ReplayWindow":             strconv.Itoa(ReplayWindow) + " sequence numbers (`ReplayWindow`)",
		"window depth":             "at most " + strconv.Itoa(ReplayWindow-1) + " below",
		"LogRate":                  formatThousands(LogRate) + " bytes/s) sustained (`LogRate`)",
		"LogBurst":                 formatThousands(LogBurst) + " bytes, `LogBurst`)",
		"MaxLogLine":               strconv.Itoa(MaxLogLine) + " bytes, `MaxLogLine`)",
		"MaxLogLinesPerMessage":    strconv.Itoa(MaxLogLinesPerMessage) + " (`MaxLogLinesPerMessage`)",
		"MaxBuildLog":              formatThousands(MaxBuildLog) + " bytes, `MaxBuildLog`)",
		"build log halves":         "first " + formatThousands(MaxBuildLog/2) + " and last " + formatThousands(MaxBuildLog/2) + " bytes",
		"TruncationMarker":         "`" + strings.ReplaceAll(TruncationMarker, "\n", `\n`) + "`",
		"RefreshSkew":              strconv.Itoa(int(RefreshSkew/time.Minute)) + " min before expiry (`RefreshSkew`)",
		"MACSize":                  "43 characters",
		"DefaultHeartbeatInterval": formatThousands(int(DefaultHeartbeatInterval/time.Millisecond)) + " (`DefaultHeartbeatInterval`)",
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("PROTOCOL.md does not state %s as %q", what, s)
		}
	}
	if n := len(base64.RawURLEncoding.EncodeToString(make([]byte, MACSize))); n != 43 {
		t.Fatalf("a MAC is %d characters", n)
	}
	for _, typ := range []string{TypeHeartbeat, TypeJobStatus, TypeJobResult, TypeAppStats, TypeAppStatus,
		TypeViolation, TypeRuntimeLog, TypeBuildLog, TypeJob, TypeError} {
		if !strings.Contains(doc, "### ") || !strings.Contains(doc, " `"+typ+"`\n") {
			t.Errorf("PROTOCOL.md has no section for message type %s", typ)
		}
	}
	for _, code := range []string{CodeBadFrame, CodeBadMAC, CodeBadClock, CodeReplayed, CodeUnknownType,
		CodeBadPayload, CodeNotOwner, CodeRateLimited, CodeTooLarge, CodeInternal} {
		if !strings.Contains(doc, "| `"+code+"` |") {
			t.Errorf("PROTOCOL.md's error table lacks %s", code)
		}
	}
	for _, v := range []string{RuntimeExec, RuntimePodman, AppRunning, AppStopped, AppExited, AppCrashloop} {
		if !strings.Contains(doc, "`"+v+"`") {
			t.Errorf("PROTOCOL.md does not mention %q", v)
		}
	}
	for _, v := range []any{Envelope{}, RegisterRequest{}, RegisterResponse{}, WorkerInfo{}, Capacity{}, TokenResponse{},
		Heartbeat{}, JobStatus{}, JobResult{}, AppStats{}, AppStat{}, AppStatus{}, Violation{}, RuntimeLog{},
		LogLine{}, BuildLog{}, Job{}, DeployPayload{}, Limits{}, Error{}} {
		for _, name := range jsonFields(reflect.TypeOf(v)) {
			if !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, "[]."+name+"`") {
				t.Errorf("PROTOCOL.md does not document %T field %q", v, name)
			}
		}
	}
}

// jsonFields lists the JSON names of a struct's fields, embedded ones
// included.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// A receiver verifies the payload's bytes exactly as they appear in the
// frame, whatever encoder produced the envelope around them: another
// language's JSON library may order fields differently and add whitespace.
func TestForeignEncoderFrames(t *testing.T) {
	key := EnvelopeKey(exampleAPIKey)
	payload := `{ "running_apps" : 3,
	  "cpu_percent": 12.5 }`
	e := &Envelope{Type: TypeHeartbeat, Seq: 12, TS: time.Now().UnixMilli(), ReplyTo: 0, Payload: json.RawMessage(payload)}
	Seal(key, WorkerToCore, e)
	frame := "\n{ \"mac\" : \"" + e.MAC + "\",\r\n \"payload\" :  " + payload + " , \"ts\":" + strconv.FormatInt(e.TS, 10) +
		", \"type\" : \"heart\\u0062eat\", \"seq\" : 12 }\n"
	got, err := Decode([]byte(frame))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Payload) != payload || got.Type != TypeHeartbeat {
		t.Fatalf("decoded %q %q", got.Type, got.Payload)
	}
	if err := Open(key, WorkerToCore, got); err != nil {
		t.Fatalf("a foreign-encoded frame failed: %v", err)
	}
	// Re-encoding the payload (here: compacting it) breaks the MAC: the
	// signer must sign the bytes it sends.
	got.Payload = json.RawMessage(`{"running_apps":3,"cpu_percent":12.5}`)
	if err := Open(key, WorkerToCore, got); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("re-encoded payload: %v", err)
	}
}

func TestDecodeRejectsMore(t *testing.T) {
	for name, frame := range map[string]string{
		"null payload":   `{"type":"heartbeat","seq":1,"ts":1,"mac":"x","payload":null}`,
		"string payload": `{"type":"heartbeat","seq":1,"ts":1,"mac":"x","payload":"{}"}`,
		"fractional seq": `{"type":"heartbeat","seq":1.5,"ts":1,"mac":"x"}`,
		"negative seq":   `{"type":"heartbeat","seq":-1,"ts":1,"mac":"x"}`,
		"string seq":     `{"type":"heartbeat","seq":"1","ts":1,"mac":"x"}`,
		"array":          `[{"type":"heartbeat","seq":1,"ts":1,"mac":"x"}]`,
		"empty":          ``,
	} {
		if _, err := Decode([]byte(frame)); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v, want ErrBadFrame", name, err)
		}
	}
	// Omitted payload and reply_to are fine and sign as empty and 0.
	key := EnvelopeKey(exampleAPIKey)
	e := &Envelope{Type: "x", Seq: 1, TS: 5}
	Seal(key, CoreToWorker, e)
	frame, _ := Encode(e)
	if strings.Contains(string(frame), "payload") || strings.Contains(string(frame), "reply_to") {
		t.Fatalf("empty fields encoded: %s", frame)
	}
	got, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if err := Open(key, CoreToWorker, got); err != nil {
		t.Fatal(err)
	}
	if in := AppendSigningInput(nil, CoreToWorker, e); string(in) != "wh1\nc\nx\n1\n5\n0\n" {
		t.Fatalf("signing input %q", in)
	}
}

// MACs must be base64url without padding: standard base64 or padded forms
// of the right MAC are refused.
func TestOpenMACEncoding(t *testing.T) {
	key := EnvelopeKey(exampleAPIKey)
	e, err := Decode([]byte(exampleFrame))
	if err != nil {
		t.Fatal(err)
	}
	if err := Open(key, WorkerToCore, e); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(exampleMAC)
	for name, mac := range map[string]string{
		"padded":   base64.URLEncoding.EncodeToString(raw),
		"standard": base64.StdEncoding.EncodeToString(raw),
		"hex":      hex.EncodeToString(raw),
		"empty":    "",
	} {
		c := *e
		c.MAC = mac
		if err := Open(key, WorkerToCore, &c); !errors.Is(err, ErrBadMAC) {
			t.Errorf("%s MAC %q: %v", name, mac, err)
		}
	}
}

// Payloads beyond Seal's stack buffer sign and verify the same way.
func TestSealLargePayload(t *testing.T) {
	key := EnvelopeKey(exampleAPIKey)
	payload := `{"logs":"` + strings.Repeat("x", 700<<10) + `"}`
	e := &Envelope{Type: TypeBuildLog, Seq: 3, TS: time.Now().UnixMilli(), Payload: json.RawMessage(payload)}
	Seal(key, WorkerToCore, e)
	want := base64.RawURLEncoding.EncodeToString(Sign(key, AppendSigningInput(nil, WorkerToCore, e)))
	if e.MAC != want {
		t.Fatal("Seal disagrees with Sign over the signing input")
	}
	frame, _ := Encode(e)
	got, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if err := Open(key, WorkerToCore, got); err != nil {
		t.Fatal(err)
	}
}

func TestWindowEdges(t *testing.T) {
	var w Window
	const top = ^uint64(0)
	for i, s := range []struct {
		seq  uint64
		want bool
	}{
		{5, true}, {5 + ReplayWindow*10, true}, {5, false}, {5 + ReplayWindow*10 - (ReplayWindow - 1), true},
		{top, true}, {top, false}, {top - (ReplayWindow - 1), true}, {top - ReplayWindow, false}, {1, false},
	} {
		if got := w.Accept(s.seq); got != s.want {
			t.Fatalf("step %d: Accept(%d) = %v, want %v", i, s.seq, got, s.want)
		}
	}
	// Sequences restart per connection: a new Window accepts 1 again.
	var fresh Window
	if !fresh.Accept(1) {
		t.Fatal("a fresh window refused 1")
	}
}

// Decode never panics, and what it accepts survives Encode/Decode and
// Open without panicking.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(exampleFrame))
	f.Add([]byte(exampleErrFrame))
	f.Add([]byte(`{"type":"x","seq":1,"ts":1,"mac":"x","payload":{}}`))
	f.Add([]byte(`{"type":"x","seq":18446744073709551615,"ts":-9223372036854775808,"reply_to":1,"mac":"AAAA"}`))
	f.Add([]byte(`{"type":"x","seq":1,"ts":1,"mac":"x","Seq":2}`))
	f.Add([]byte(`{"type":"x","seq":1,"ts":null,"mac":"x","extra":[1,{"a":[true,false,null,-0.5e+3]}],"payload":{"k":"\u00e9\n"}}`))
	f.Add([]byte(`{"typ\u0065":"x","seq":1,"ts":1,"mac":"x"}`))
	key := EnvelopeKey(exampleAPIKey)
	f.Fuzz(func(t *testing.T, frame []byte) {
		e, err := Decode(frame)
		// Differential: encoding/json's reading of the frame must agree,
		// except where the spec is stricter (a field twice, or a field
		// name in another case or escaped).
		var ref Envelope
		refErr := json.Unmarshal(frame, &ref)
		if refErr == nil && (ref.Type == "" || len(ref.Type) > 64 || ref.Seq == 0 || ref.MAC == "" ||
			(len(ref.Payload) > 0 && ref.Payload[0] != '{')) {
			refErr = errors.New("shape")
		}
		switch {
		case err == nil && refErr != nil:
			t.Fatalf("Decode accepted %q, which encoding/json refuses: %v", frame, refErr)
		case err == nil && (e.Type != ref.Type || e.Seq != ref.Seq || e.TS != ref.TS || e.ReplyTo != ref.ReplyTo ||
			e.MAC != ref.MAC || !bytes.Equal(e.Payload, ref.Payload)):
			t.Fatalf("Decode(%q) = %+v; encoding/json reads %+v", frame, e, ref)
		case err != nil && refErr == nil && !ambiguousEnvelopeKeys(frame):
			t.Fatalf("Decode refused %q (%v), which encoding/json reads as %+v", frame, err, ref)
		}
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("Decode error %v is not ErrBadFrame", err)
			}
			return
		}
		_ = Open(key, WorkerToCore, e)
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
		if e2.Type != e.Type || e2.Seq != e.Seq || e2.TS != e.TS || e2.ReplyTo != e.ReplyTo || e2.MAC != e.MAC {
			t.Fatalf("round trip changed %+v into %+v", e, e2)
		}
	})
}

// ambiguousEnvelopeKeys reports whether frame's top-level object names an
// envelope field twice, in another case, or with escapes: frames the spec
// refuses and encoding/json reads anyway.
func ambiguousEnvelopeKeys(frame []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(frame, &top) != nil {
		return false
	}
	for k := range top {
		for _, f := range envelopeFields {
			if strings.EqualFold(k, f) {
				if k != f {
					return true
				}
			}
		}
	}
	// A map keeps one entry per key: count the raw occurrences instead.
	dec := json.NewDecoder(bytes.NewReader(frame))
	if _, err := dec.Token(); err != nil {
		return false
	}
	count := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		k, _ := tok.(string)
		for _, f := range envelopeFields {
			if strings.EqualFold(k, f) {
				count[f]++
			}
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	for _, n := range count {
		if n > 1 {
			return true
		}
	}
	return bytes.Contains(frame, []byte(`\`))
}
