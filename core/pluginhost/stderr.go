package pluginhost

import (
	"encoding/json"
	"sync"
)

// maxStderrLine bounds one kept stderr line.
const maxStderrLine = 1024

// stderrTail keeps the last lines a plugin wrote to stderr, to log with a
// crash. hclog JSON lines are shortened to "level: message".
type stderrTail struct {
	mu      sync.Mutex
	max     int
	partial []byte
	kept    []string
}

func newStderrTail(n int) *stderrTail { return &stderrTail{max: n} }

// Write implements io.Writer; go-plugin writes each line, then "\n".
func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range p {
		if b == '\n' {
			s.push()
			continue
		}
		if len(s.partial) < maxStderrLine {
			s.partial = append(s.partial, b)
		}
	}
	return len(p), nil
}

func (s *stderrTail) push() {
	line := string(s.partial)
	s.partial = s.partial[:0]
	if line == "" {
		return
	}
	var entry struct {
		Level   string `json:"@level"`
		Message string `json:"@message"`
	}
	if len(line) > 0 && line[0] == '{' && json.Unmarshal([]byte(line), &entry) == nil && entry.Message != "" {
		line = entry.Level + ": " + entry.Message
	}
	s.kept = append(s.kept, line)
	if len(s.kept) > s.max {
		s.kept = s.kept[len(s.kept)-s.max:]
	}
}

// lines returns the kept lines, oldest first, with any unterminated one.
func (s *stderrTail) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.kept...)
	if len(s.partial) > 0 {
		out = append(out, string(s.partial))
	}
	return out
}

// reset forgets everything, for a new process.
func (s *stderrTail) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial, s.kept = s.partial[:0], nil
}
