package wsproto

import (
	"encoding/json"
	"strconv"
	"strings"
)

// DecodePayload decodes an envelope's payload into v with the semantics of
// encoding/json.Unmarshal (the result and whether it fails are the same).
// The frequent payloads, *Heartbeat and *AppStats, take a path without
// reflection when written plainly: exact field names, numbers; anything
// else falls back to encoding/json.
func DecodePayload(payload []byte, v any) error {
	switch p := v.(type) {
	case *Heartbeat:
		var h Heartbeat
		if fastObject(payload, func(s *scanner, key []byte) (bool, error) { return h.field(s, key) }) {
			*p = h
			return nil
		}
	case *AppStats:
		var a AppStats
		if fastObject(payload, func(s *scanner, key []byte) (bool, error) { return a.field(s, key) }) {
			*p = a
			return nil
		}
	}
	return json.Unmarshal(payload, v)
}

// fastObject walks payload as one object, handing each field to set. It
// reports false (nothing decided: use encoding/json) on anything the fast
// path does not handle identically: a syntax error, an escaped or
// non-ASCII key, a key matching a field only without regard to case, or a
// value set does not take.
func fastObject(payload []byte, set func(s *scanner, key []byte) (bool, error)) bool {
	s := scanner{b: payload}
	return fastObjectAt(&s, set) && s.end() == nil
}

// numFloat and numInt decode a plain JSON number into a float64 or int64
// field as encoding/json would; null, strings and the like are not
// handled.
func numFloat(s *scanner, dst *float64) (bool, error) {
	n, err := s.number()
	if err != nil {
		return false, err
	}
	if v, ok := exactFloat(n); ok {
		*dst = v
		return true, nil
	}
	v, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return false, nil
	}
	*dst = v
	return true, nil
}

func numInt(s *scanner, dst *int64) (bool, error) {
	n, err := s.number()
	if err != nil {
		return false, err
	}
	if v, ok := smallInt(n); ok {
		*dst = v
		return true, nil
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return false, nil
	}
	*dst = v
	return true, nil
}

// smallInt parses a number made of at most 18 digits, optionally negative:
// the common case, without the allocation strconv's error path costs.
func smallInt(n []byte) (int64, bool) {
	neg := len(n) > 0 && n[0] == '-'
	if neg {
		n = n[1:]
	}
	if len(n) == 0 || len(n) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range n {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
	1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// exactFloat parses a number without exponent whose digits, taken as an
// integer, are at most 2^53, with at most 22 of them after the point: both
// the digits and the power of ten are exact in a float64, so one division
// is correctly rounded (Clinger's fast path, as strconv takes it) and the
// result is ParseFloat's.
func exactFloat(n []byte) (float64, bool) {
	neg := len(n) > 0 && n[0] == '-'
	if neg {
		n = n[1:]
	}
	var mant uint64
	digits, frac, point := 0, 0, false
	for _, c := range n {
		switch {
		case c == '.' && !point:
			point = true
		case '0' <= c && c <= '9':
			mant = mant*10 + uint64(c-'0')
			digits++
			if point {
				frac++
			}
			if digits > 19 {
				return 0, false
			}
		default:
			return 0, false
		}
	}
	if digits == 0 || mant > 1<<53 || frac >= len(pow10) {
		return 0, false
	}
	v := float64(mant) / pow10[frac]
	if neg {
		v = -v
	}
	return v, true
}

// unknownKey consumes the value of a field that is none of names; it is
// not handled when it matches one of them without regard to case, since
// encoding/json would fill that field.
func unknownKey(s *scanner, key []byte, names ...string) (bool, error) {
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			return false, nil
		}
	}
	if err := s.skip(); err != nil {
		return false, err
	}
	return true, nil
}

var heartbeatFields = []string{"cpu_percent", "memory_percent", "disk_percent", "memory_total", "memory_used",
	"disk_total", "disk_used", "load1", "running_apps"}

func (h *Heartbeat) field(s *scanner, key []byte) (bool, error) {
	switch string(key) {
	case "cpu_percent":
		return numFloat(s, &h.CPUPercent)
	case "memory_percent":
		return numFloat(s, &h.MemoryPercent)
	case "disk_percent":
		return numFloat(s, &h.DiskPercent)
	case "memory_total":
		return numInt(s, &h.MemoryTotal)
	case "memory_used":
		return numInt(s, &h.MemoryUsed)
	case "disk_total":
		return numInt(s, &h.DiskTotal)
	case "disk_used":
		return numInt(s, &h.DiskUsed)
	case "load1":
		return numFloat(s, &h.Load1)
	case "running_apps":
		return numInt(s, &h.RunningApps)
	}
	return unknownKey(s, key, heartbeatFields...)
}

var appStatFields = []string{"app_id", "cpu_percent", "mem_bytes", "mem_limit", "net_rx_bytes", "net_tx_bytes",
	"net_mbps", "disk_mbps"}

func (a *AppStats) field(s *scanner, key []byte) (bool, error) {
	if string(key) != "apps" {
		return unknownKey(s, key, "apps")
	}
	// A null, a non-array or a second "apps" (which encoding/json decodes
	// over the first one's elements) goes the slow way.
	if a.Apps != nil || s.peek() != '[' {
		return false, nil
	}
	s.i++
	var apps []AppStat
	if s.peek() == ']' {
		s.i++
		if apps == nil {
			apps = []AppStat{}
		}
		a.Apps = apps
		return true, nil
	}
	for {
		var st AppStat
		if !fastObjectAt(s, func(s *scanner, key []byte) (bool, error) { return st.field(s, key) }) {
			return false, nil
		}
		apps = append(apps, st)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			a.Apps = apps
			return true, nil
		default:
			return false, nil
		}
	}
}

// fastObjectAt is fastObject for an object inside s, at its position.
func fastObjectAt(s *scanner, set func(s *scanner, key []byte) (bool, error)) bool {
	if s.peek() != '{' {
		return false
	}
	ok := true
	err := s.object(func(key []byte, complex bool) error {
		if complex {
			ok = false
			return errSyntax
		}
		handled, err := set(s, key)
		if err != nil || !handled {
			ok = false
			return errSyntax
		}
		return nil
	})
	return ok && err == nil
}

func (a *AppStat) field(s *scanner, key []byte) (bool, error) {
	switch string(key) {
	case "app_id":
		return numInt(s, &a.AppID)
	case "cpu_percent":
		return numFloat(s, &a.CPUPercent)
	case "mem_bytes":
		return numInt(s, &a.MemBytes)
	case "mem_limit":
		return numInt(s, &a.MemLimit)
	case "net_rx_bytes":
		return numInt(s, &a.NetRxBytes)
	case "net_tx_bytes":
		return numInt(s, &a.NetTxBytes)
	case "net_mbps":
		return numFloat(s, &a.NetMbps)
	case "disk_mbps":
		return numFloat(s, &a.DiskMbps)
	}
	return unknownKey(s, key, appStatFields...)
}
