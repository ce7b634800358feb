package httpplans

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"

	"github.com/wisehosting/wisehosting/sdk/plans"
	"github.com/wisehosting/wisehosting/sdk/proto/pluginv1"
)

// This file turns the fetched JSON document into a catalogue: it checks the
// document's JSON shape itself, then builds the catalogue with
// sdk/plans.Build, which every plan source shares, so both the static and
// this plugin accept exactly the same plans with the same messages.

// catalogueConfig is a catalogue as read from the document: plans by id.
type catalogueConfig struct {
	Plans       map[string]plans.PlanConfig
	DefaultPlan string
}

// The fields of the document and of each plan object.
var (
	documentFields = []string{"default_plan", "plans"}
	planFields     = []string{"id", "name", "max_apps", "cpu", "memory", "disk", "bandwidth"}
)

// ParseDocument checks a plan catalogue document and converts it to the
// wire's units, or says everything that is wrong with it (the shape of the
// JSON first; then, as plugins/plans/static does for its config, every
// plan and attribute at fault). refresh_after_ms is left 0.
func ParseDocument(doc []byte) (*pluginv1.PlansResponse, error) {
	doc = bytes.TrimPrefix(doc, []byte("\ufeff")) // a UTF-8 byte order mark, as some editors write
	cfg, err := decodeDocument(doc)
	if err != nil {
		return nil, err
	}
	return catalogue(cfg)
}

// decodeDocument checks the JSON shape of a document: one object, no
// unknown or repeated field, at least one plan, each with a unique string
// id and values of the right JSON types.
func decodeDocument(doc []byte) (catalogueConfig, error) {
	var cfg catalogueConfig
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var whole json.RawMessage
	if err := dec.Decode(&whole); err != nil {
		return cfg, syntaxError(doc, err)
	}
	if end := dec.InputOffset(); len(bytes.TrimSpace(doc[end:])) > 0 {
		rest := doc[end:]
		at := end + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n")))
		return cfg, fmt.Errorf("not valid JSON: unexpected data after the document at %s", position(doc, at))
	}
	top, err := object(whole)
	if err != nil {
		return cfg, fmt.Errorf(`the document must be a JSON object {"default_plan": "…", "plans": […]}, not %s`, jsonKind(whole))
	}
	if err := checkFields("the document", top, documentFields); err != nil {
		return cfg, err
	}
	if raw, ok := top.get("default_plan"); ok {
		if cfg.DefaultPlan, ok = str(raw); !ok {
			return cfg, fmt.Errorf("default_plan must be a string, not %s", jsonKind(raw))
		}
	}
	var items []json.RawMessage
	if raw, ok := top.get("plans"); ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &items); err != nil {
			return cfg, fmt.Errorf("plans must be an array of plan objects, not %s", jsonKind(raw))
		}
	}
	if len(items) == 0 {
		return cfg, errors.New(`plans is missing or empty: the document must list at least one plan`)
	}

	cfg.Plans = make(map[string]plans.PlanConfig, len(items))
	where := make(map[string]int, len(items))
	var errs []error
	for i, item := range items {
		id, pc, err := decodePlan(i, item)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := where[id]; dup {
			errs = append(errs, fmt.Errorf("plan %q appears twice (plans[%d] and plans[%d])", id, first, i))
			continue
		}
		where[id] = i
		cfg.Plans[id] = pc
	}
	return cfg, errors.Join(errs...)
}

// decodePlan checks the JSON shape of plans[i].
func decodePlan(i int, raw json.RawMessage) (string, plans.PlanConfig, error) {
	var pc plans.PlanConfig
	obj, err := object(raw)
	if err != nil {
		return "", pc, fmt.Errorf("plans[%d] must be an object, not %s", i, jsonKind(raw))
	}
	idRaw, ok := obj.get("id")
	if !ok || isNull(idRaw) {
		return "", pc, fmt.Errorf("plans[%d]: id is required", i)
	}
	id, ok := str(idRaw)
	if !ok {
		return "", pc, fmt.Errorf("plans[%d]: id must be a string, not %s", i, jsonKind(idRaw))
	}
	label := fmt.Sprintf("plan %q", id)
	if err := checkFields(label, obj, planFields); err != nil {
		return "", pc, err
	}
	var errs []error
	fail := func(attr, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s %s", label, attr, fmt.Sprintf(format, args...)))
	}
	if raw, ok := obj.get("name"); ok && !isNull(raw) {
		if pc.Name, ok = str(raw); !ok {
			fail("name", "must be a string, not %s", jsonKind(raw))
		}
	}
	for _, f := range []struct {
		attr string
		to   *float64
	}{{"max_apps", &pc.MaxApps}, {"cpu", &pc.CPU}} {
		raw, ok := obj.get(f.attr)
		if !ok || isNull(raw) {
			fail(f.attr, "is required")
			continue
		}
		if !isNumber(raw) {
			fail(f.attr, "must be a number, not %s", jsonKind(raw))
			continue
		}
		n := json.Number(bytes.TrimSpace(raw))
		v, err := n.Float64()
		if err != nil {
			fail(f.attr, "%s is out of range", n)
			continue
		}
		*f.to = v
	}
	for _, f := range []struct {
		attr     string
		to       *string
		required bool
	}{{"memory", &pc.Memory, true}, {"disk", &pc.Disk, true}, {"bandwidth", &pc.Bandwidth, false}} {
		raw, ok := obj.get(f.attr)
		if !ok || isNull(raw) {
			if f.required {
				fail(f.attr, "is required")
			}
			continue
		}
		s, ok := quantity(raw)
		if !ok {
			fail(f.attr, `must be a string such as "512MiB" or a number, not %s`, jsonKind(raw))
			continue
		}
		*f.to = s
	}
	return id, pc, errors.Join(errs...)
}

// quantity reads a size or bandwidth: a string as is, or a number as the
// string HCL converts it to (so 2147483648 means "2147483648", as disk =
// 2147483648 does in the static plugin's config).
func quantity(raw json.RawMessage) (string, bool) {
	if s, ok := str(raw); ok {
		return s, true
	}
	if !isNumber(raw) {
		return "", false
	}
	f, _, err := big.ParseFloat(string(bytes.TrimSpace(raw)), 10, 512, big.ToNearestEven)
	if err != nil {
		return "", false
	}
	return f.Text('f', -1), true
}

// fields is a JSON object's members in order.
type fields []struct {
	name string
	raw  json.RawMessage
}

func (fs fields) get(name string) (json.RawMessage, bool) {
	for _, f := range fs {
		if f.name == name {
			return f.raw, true
		}
	}
	return nil, false
}

// object reads a JSON object's members, keeping repeated names (which
// encoding/json would silently collapse to the last).
func object(raw json.RawMessage) (fields, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var out fields
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, struct {
			name string
			raw  json.RawMessage
		}{name, v})
	}
	return out, nil
}

// checkFields rejects unknown and repeated members of an object.
func checkFields(what string, obj fields, known []string) error {
	seen := make(map[string]bool, len(obj))
	for _, f := range obj {
		if !slices.Contains(known, f.name) {
			return fmt.Errorf("%s: unknown field %q (the fields are %s)", what, f.name, strings.Join(known, ", "))
		}
		if seen[f.name] {
			return fmt.Errorf("%s: field %q appears twice", what, f.name)
		}
		seen[f.name] = true
	}
	return nil
}

func str(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func isNumber(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

// jsonKind names the JSON type of a value, for messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '[':
		return "an array"
	case raw[0] == '"':
		return "a string"
	case raw[0] == 't' || raw[0] == 'f':
		return "a boolean"
	case raw[0] == 'n':
		return "null"
	default:
		return "a number"
	}
}

// syntaxError describes a document that is not JSON, with the line and
// column where it goes wrong.
func syntaxError(doc []byte, err error) error {
	if len(bytes.TrimSpace(doc)) == 0 {
		return errors.New("not valid JSON: the document is empty")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// Offset counts the bytes read, the offending one included.
		return fmt.Errorf("not valid JSON: %v at %s", se, position(doc, se.Offset-1))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("not valid JSON: the document ends too early (truncated?)")
	}
	return fmt.Errorf("not valid JSON: %v", err)
}

// position is "line L, column C" of a byte offset (1-based; columns count
// bytes).
func position(doc []byte, off int64) string {
	off = min(max(off, 0), int64(len(doc)))
	before := doc[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int64(len(before)-bytes.LastIndexByte(before, '\n')-1) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

// catalogue builds the catalogue a document describes with sdk/plans.Build,
// the checks every plan source shares (an empty catalogue, which the static
// plugin reads as "the default catalogue", is an error here: a plan server
// answering an empty list is broken, not asking for the seed's plans).
func catalogue(cfg catalogueConfig) (*pluginv1.PlansResponse, error) {
	return plans.Build(cfg.Plans, cfg.DefaultPlan)
}
